"""The Grafana dashboard queries only metrics the operator exports, and valid PromQL."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_names import (
    GRAFANA_VARS,
    PROMETHEUS_SERIES,
    exported_series_names,
    metric_names,
    promtool,
)

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "manifests/grafana/pipeline-recovery-dashboard.json"


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # collapsed rows nest their panels


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target and every query variable of the dashboard."""
    out = [
        (panel["title"], target["expr"])
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]
    for var in _dashboard().get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var.get("query")
            out.append((f"${var['name']}", query["query"] if isinstance(query, dict) else query))
    return out


def _substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    return expr


def test_every_target_has_an_expression() -> None:
    for panel in _panels(_dashboard()["panels"]):
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), f"panel {panel['title']!r}: empty query"


@pytest.mark.parametrize(("title", "expr"), queries(), ids=[t for t, _ in queries()])
def test_query_names_only_exported_metrics(title: str, expr: str) -> None:
    used = metric_names(expr)
    assert used, f"{title}: selects no metric"
    unknown = used - exported_series_names() - PROMETHEUS_SERIES
    assert not unknown, f"{title}: {unknown} is not exported by the operator"


def test_the_dashboard_covers_what_users_asked_for() -> None:
    used = {name for _, expr in queries() for name in metric_names(expr)}
    exprs = "\n".join(expr for _, expr in queries())
    # recovery rate, time to recover, failures by category, AI cost, remediation outcomes,
    # LLM requests by outcome, incidents by phase
    assert "pipeline_recovery_recoveries_total" in used
    assert "histogram_quantile" in exprs
    assert "pipeline_recovery_recovery_duration_seconds_bucket" in used
    assert "by (category) (rate(pipeline_recovery_failures_detected_total" in exprs
    assert "pipeline_recovery_llm_cost_usd_total" in used
    assert "by (action, result) (rate(pipeline_recovery_remediations_total" in exprs
    assert "by (outcome) (rate(pipeline_recovery_llm_requests_total" in exprs
    assert "by (phase) (pipeline_recovery_incidents)" in exprs


def test_every_exported_metric_is_on_the_dashboard() -> None:
    used = {name for _, expr in queries() for name in metric_names(expr)}
    families = {
        name.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        for name in exported_series_names()
    }
    for family in families:
        assert any(name.startswith(family) for name in used), f"{family} not on the dashboard"


def test_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no query linter, but it parses recording rules: one rule per query.
    rules = [
        {"record": f"dashboard:query_{i}", "expr": _substitute(expr)}
        for i, (_, expr) in enumerate(queries())
    ]
    path = tmp_path / "dashboard-queries.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_is_importable_and_uses_a_datasource_variable() -> None:
    dash = _dashboard()
    assert dash["uid"] == "pipeline-recovery"
    assert dash["title"]
    assert any(v["type"] == "datasource" for v in dash["templating"]["list"])
    ids = [p["id"] for p in _panels(dash["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels(dash["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel.get("description"), f"panel {panel['title']!r} needs a description"
