"""Alert rules: promtool-checked, unit-tested per alert, in sync with the PrometheusRule."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_names import PROMETHEUS_SERIES, exported_series_names, metric_names, promtool

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests/prometheus/rules/pipeline-recovery.rules.yaml"
PROMETHEUS_RULE = ROOT / "manifests/prometheus/prometheusrule.yaml"
SERVICE_MONITOR = ROOT / "manifests/prometheus/servicemonitor.yaml"
METRICS_SERVICE = ROOT / "manifests/manager/service.yaml"
RULE_TESTS = sorted((ROOT / "tests/prometheus").glob("*.test.yaml"))
DOCS = ROOT / "docs/observability.md"
SEVERITIES = {"critical", "warning", "info"}
# What the brief asks the rules to cover; each must stay.
REQUIRED_ALERTS = {
    "PipelineRecoveryAutoRecoveryRatioLow",
    "PipelineRecoveryRemediationFailuresRising",
    "PipelineRecoveryFailureCategorySpike",
    "PipelineRecoveryAIAnalysisFailing",
    "PipelineRecoveryAIUnavailable",
    "PipelineRecoveryLLMSpendOverBudget",
    "PipelineRecoveryIncidentsStuck",
    "PipelineRecoveryOperatorDown",
    "PipelineRecoveryOperatorAbsent",
}


def _groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def _alerts() -> dict[str, dict[str, Any]]:
    rules = [rule for group in _groups() for rule in group["rules"]]
    return {rule["alert"]: rule for rule in rules if "alert" in rule}


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)


def test_promtool_check_rules_accepts_the_rules_file() -> None:
    result = _run(promtool(), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in _groups())} rules found" in result.stdout


def test_promtool_check_rules_accepts_the_prometheusrule_groups(tmp_path: Path) -> None:
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    extracted = tmp_path / "from-prometheusrule.yaml"
    extracted.write_text(yaml.safe_dump({"groups": spec["groups"]}))
    result = _run(promtool(), "check", "rules", str(extracted))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    assert RULE_TESTS, "no tests/prometheus/*.test.yaml"
    result = _run(promtool(), "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") + result.stderr.count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        doc = yaml.safe_load(path.read_text())
        assert doc["rule_files"] == [f"../../{RULES.relative_to(ROOT)}"]
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    alerts = set(_alerts())
    assert alerts - fires == set(), "alerts without a test where they fire"
    assert alerts - quiet == set(), "alerts without a test where they stay quiet"
    assert (fires | quiet) - alerts == set(), "tests for alerts that do not exist"


def test_prometheusrule_is_generated_from_the_rules_file() -> None:
    generated = yaml.safe_load(PROMETHEUS_RULE.read_text())
    assert generated["apiVersion"] == "monitoring.coreos.com/v1"
    assert generated["kind"] == "PrometheusRule"
    assert generated["spec"]["groups"] == _groups(), "run `make rules`"
    result = _run(sys.executable, "hack/gen_prometheusrule.py", "--check")
    assert result.returncode == 0, result.stderr


def test_the_required_alerts_exist() -> None:
    assert set(_alerts()) >= REQUIRED_ALERTS


def _doc_anchors() -> set[str]:
    """GitHub's heading anchors: lower-case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in DOCS.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_has_severity_summary_description_and_runbook(name: str) -> None:
    rule = _alerts()[name]
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert len(annotations["summary"]) > 10
    assert len(annotations["description"]) > 60, "the description must say what to do"
    url = annotations["runbook_url"]
    page, _, anchor = url.partition("#")
    assert page.endswith("/docs/observability.md")
    assert anchor in _doc_anchors(), f"{url}: no such section in docs/observability.md"
    assert name.lower() == anchor


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_expression_uses_only_exported_metrics(name: str) -> None:
    used = metric_names(_alerts()[name]["expr"])
    assert used, "an alert must select some series"
    unknown = used - exported_series_names() - PROMETHEUS_SERIES
    assert not unknown, f"{name} selects series the operator does not export: {unknown}"


def test_ratio_alerts_are_guarded_against_no_traffic() -> None:
    # A ratio without a traffic floor fires on the first failure of a quiet day, and NaN from
    # 0/0 must never be what keeps it quiet by accident.
    for name, rule in _alerts().items():
        if re.search(r"\)\s*/\s*\n?\s*sum", rule["expr"]):
            assert "and on ()" in rule["expr"], f"{name}: ratio without a traffic guard"


def test_servicemonitor_scrapes_the_metrics_service_under_the_alerts_job_label() -> None:
    monitor = yaml.safe_load(SERVICE_MONITOR.read_text())
    assert monitor["kind"] == "ServiceMonitor"
    endpoint = monitor["spec"]["endpoints"][0]
    relabel = {r["targetLabel"]: r["replacement"] for r in endpoint["relabelings"]}
    assert relabel["job"] == "pipeline-recovery"
    for rule in ("PipelineRecoveryOperatorDown", "PipelineRecoveryOperatorAbsent"):
        assert 'job="pipeline-recovery"' in _alerts()[rule]["expr"]
    if not METRICS_SERVICE.exists():
        pytest.skip("manifests/manager/service.yaml not written yet")
    service = yaml.safe_load(METRICS_SERVICE.read_text())
    labels = service["metadata"]["labels"]
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert labels.get(key) == value, f"ServiceMonitor selects {key}={value}, Service lacks it"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert service["metadata"]["namespace"] in monitor["spec"]["namespaceSelector"]["matchNames"]


def test_monitoring_yaml_passes_yamllint() -> None:
    config = ROOT / ".yamllint"
    conf = ["-c", str(config)] if config.exists() else [
        "-d", "{extends: default, rules: {line-length: {max: 100}}}"
    ]
    files = [RULES, PROMETHEUS_RULE, SERVICE_MONITOR, *RULE_TESTS]
    files += sorted((ROOT / "manifests/prometheus").glob("*.yaml"))
    files += sorted((ROOT / "manifests/grafana").glob("*.yaml"))
    result = _run(sys.executable, "-m", "yamllint", "-s", *conf, *map(str, sorted(set(files))))
    assert result.returncode == 0, result.stdout + result.stderr
