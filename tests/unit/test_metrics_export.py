"""The /metrics endpoint exports exactly the metric names, types and labels of design.md."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline_recovery import __version__, metrics

# design.md "Metrics": alerts and dashboards depend on these; change only on purpose.
CONTRACT: dict[str, tuple[str, tuple[str, ...]]] = {
    "pipeline_recovery_failures_detected": ("counter", ("kind", "category", "severity")),
    "pipeline_recovery_diagnoses": ("counter", ("source", "category")),
    "pipeline_recovery_diagnosis_duration_seconds": ("histogram", ()),
    "pipeline_recovery_remediations": ("counter", ("action", "result")),
    "pipeline_recovery_recoveries": ("counter", ("result",)),
    "pipeline_recovery_recovery_duration_seconds": ("histogram", ()),
    "pipeline_recovery_llm_requests": ("counter", ("model", "outcome")),
    "pipeline_recovery_llm_request_duration_seconds": ("histogram", ()),
    "pipeline_recovery_llm_tokens": ("counter", ("model", "direction")),
    "pipeline_recovery_llm_cost_usd": ("counter", ("model",)),
    "pipeline_recovery_llm_cache_hits": ("counter", ()),
    "pipeline_recovery_incidents": ("gauge", ("phase",)),
}
# Additions beyond design.md (additive only).
EXTRA: dict[str, tuple[str, tuple[str, ...]]] = {
    "pipeline_recovery_build_info": ("gauge", ("version",)),
}
# Label names that would explode cardinality (one series per object).
FORBIDDEN_LABELS = {"pod", "job", "name", "uid", "namespace", "fingerprint", "jobName"}
MARK = "__contract_test__"


def _labelled_children() -> list[tuple[object, dict[str, str]]]:
    """One child per labelled metric so its label set shows in the exposition text."""
    # The registry maps every sample name to its collector; dedupe collectors by identity.
    collectors = {id(c): c for c in metrics.REGISTRY._names_to_collectors.values()}
    return [
        (c, dict.fromkeys(c._labelnames, MARK))  # type: ignore[attr-defined]
        for c in collectors.values()
        if getattr(c, "_labelnames", ())
    ]


@pytest.fixture
def scraped() -> Iterator[str]:
    """The exposition text fetched over HTTP from a real metrics server on a free port."""
    children = _labelled_children()
    for collector, labels in children:
        collector.labels(**labels)  # type: ignore[attr-defined]
    server = metrics.start_server(0, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            yield response.read().decode()
    finally:
        server.close()
        for collector, labels in children:
            collector.remove(*labels.values())  # type: ignore[attr-defined]


def _families(text: str) -> dict[str, tuple[str, set[tuple[str, ...]]]]:
    out: dict[str, tuple[str, set[tuple[str, ...]]]] = {}
    for family in text_string_to_metric_families(text):
        labelsets = {
            tuple(sorted(k for k in sample.labels if k not in {"le", "quantile"}))
            for sample in family.samples
        }
        out[family.name] = (family.type, labelsets)
    return out


def test_every_design_metric_is_exported_with_its_exact_type_and_labels(scraped: str) -> None:
    families = _families(scraped)
    for name, (kind, labels) in CONTRACT.items():
        assert name in families, f"{name} missing from /metrics"
        got_kind, labelsets = families[name]
        assert got_kind == kind, f"{name}: type {got_kind}, design says {kind}"
        assert labelsets == {tuple(sorted(labels))}, f"{name}: labels {labelsets} != {labels}"


def test_nothing_outside_the_contract_is_exported(scraped: str) -> None:
    families = _families(scraped)
    assert set(families) == set(CONTRACT) | set(EXTRA)
    for name, (kind, labels) in EXTRA.items():
        assert families[name] == (kind, {tuple(sorted(labels))})


def test_sample_names_follow_the_counter_and_histogram_suffixes(scraped: str) -> None:
    samples = {
        line.split("{")[0].split(" ")[0]
        for line in scraped.splitlines()
        if line and not line.startswith("#")
    }
    assert "pipeline_recovery_failures_detected_total" in samples
    assert "pipeline_recovery_llm_cost_usd_total" in samples
    assert "pipeline_recovery_llm_cache_hits_total" in samples
    hists = ("diagnosis_duration", "recovery_duration", "llm_request_duration")
    for hist in hists:
        for suffix in ("_bucket", "_sum", "_count"):
            assert f"pipeline_recovery_{hist}_seconds{suffix}" in samples
    assert "pipeline_recovery_incidents" in samples


def test_labels_are_low_cardinality() -> None:
    for name, (_, labels) in {**CONTRACT, **EXTRA}.items():
        assert not FORBIDDEN_LABELS & set(labels), name


def test_build_info_reports_the_package_version(scraped: str) -> None:
    assert f'pipeline_recovery_build_info{{version="{__version__}"}} 1.0' in scraped


def test_set_incident_phases_zeroes_phases_that_emptied() -> None:
    try:
        metrics.set_incident_phases({"Diagnosing": 3, "Remediating": 1})
        metrics.set_incident_phases({"Remediating": 2})
        values = {
            s.labels["phase"]: s.value
            for fam in metrics.REGISTRY.collect()
            if fam.name == "pipeline_recovery_incidents"
            for s in fam.samples
        }
        assert values["Diagnosing"] == 0
        assert values["Remediating"] == 2
        assert set(metrics.PHASES) <= set(values)
    finally:
        metrics.set_incident_phases({})
