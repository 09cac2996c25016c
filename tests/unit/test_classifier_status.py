"""Kubernetes status and events as evidence, alone and weighed against the log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pipeline_recovery.classifier import Classifier
from pipeline_recovery.status_evidence import event_signals, status_signals

STATUS = Path(__file__).resolve().parents[1] / "fixtures" / "status"
LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "logs"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((STATUS / name).read_text())
    return data


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier.load()


@pytest.mark.parametrize(
    ("name", "category", "auto_fixable"),
    [
        ("pod-oomkilled.json", "out-of-memory", True),
        ("pod-imagepullbackoff.json", "image-pull", False),
        ("pod-configerror.json", "config-error", False),
        ("pod-evicted.json", "disk-full", True),
        ("pod-unschedulable.json", "unschedulable", True),
        ("job-deadline.json", "deadline-exceeded", True),
    ],
)
def test_status_only(clf: Classifier, name: str, category: str, auto_fixable: bool) -> None:
    diag = clf.diagnose([], status=_load(name))
    assert diag.category == category
    assert diag.evidence is not None and diag.evidence.source == "status"
    assert diag.confidence >= 0.8
    assert diag.auto_fixable is auto_fixable


def test_backoff_limit_alone_is_unknown(clf: Classifier) -> None:
    diag = clf.diagnose([], status=_load("job-backofflimit.json"))
    assert diag.category == "unknown"


def test_oomkilled_status_beats_test_failures_in_log(clf: Classifier) -> None:
    scan = clf.scan_bytes((LOGS / "test-failure" / "pytest.log").read_bytes())
    assert clf.diagnose([scan]).category == "test-failure"
    diag = clf.diagnose([scan], status=_load("pod-oomkilled.json"))
    assert diag.category == "out-of-memory"
    assert diag.evidence is not None and diag.evidence.source == "status"
    assert diag.evidence.pattern_id == "k8s-terminated-OOMKilled"


def test_agreeing_log_and_status_raise_confidence(clf: Classifier) -> None:
    scan = clf.scan_bytes(b"Killed\n")
    alone = clf.diagnose([scan])
    both = clf.diagnose([scan], status=_load("pod-oomkilled.json"))
    assert alone.category == both.category == "out-of-memory"
    assert both.confidence > alone.confidence


def test_exit_137_without_reason_is_weak_oom(clf: Classifier) -> None:
    diag = clf.diagnose([], status=_load("pod-exit137.json"))
    assert diag.category == "out-of-memory" and diag.confidence <= 0.5
    log = clf.scan_bytes((LOGS / "missing-module" / "python-module.log").read_bytes())
    assert clf.diagnose([log], status=_load("pod-exit137.json")).category == "missing-module"


def test_events_alone() -> None:
    events = [
        {"kind": "Event", "type": "Normal", "reason": "Scheduled", "message": "assigned"},
        {"kind": "Event", "type": "Warning", "reason": "FailedScheduling",
         "message": "0/3 nodes are available: 3 Insufficient memory."},
        {"kind": "Event", "type": "Warning", "reason": "Failed",
         "message": 'Failed to pull image "acme/x:1": rpc error: code = Unknown'},
        {"kind": "Event", "type": "Warning", "reason": "Evicted",
         "message": "The node was low on resource: ephemeral-storage."},
        {"kind": "Event", "type": "Warning", "reason": "OOMKilling",
         "message": "Killed process 4242"},
        "not an event",
    ]
    cats = [s.category for s in event_signals(events)]  # type: ignore[arg-type]
    assert cats == ["unschedulable", "image-pull", "disk-full", "out-of-memory"]


def test_status_tolerates_junk() -> None:
    assert status_signals(None) == []
    assert status_signals({"status": "weird"}) == []
    assert status_signals({"kind": "Pod", "status": {"containerStatuses": [None, 3]}}) == []


def test_events_in_diagnose(clf: Classifier) -> None:
    diag = clf.diagnose([], events=[{"reason": "FailedScheduling",
                                     "message": "0/3 nodes are available: 3 Insufficient cpu."}])
    assert diag.category == "unschedulable" and diag.evidence is not None
    assert diag.evidence.source == "events"
