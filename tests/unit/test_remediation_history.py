"""Similar cases, the action that worked before, and the recovery estimate from past incidents."""

from __future__ import annotations

from typing import Any

from pipeline_recovery.remediation import catalog
from pipeline_recovery.remediation.history import (
    DEFAULT_RECOVERY_MINUTES,
    estimate_recovery_minutes,
    preferred_action,
    recovery_minutes,
    similar_cases,
)
from pipeline_recovery.taxonomy import CATEGORIES


def past(
    name: str,
    *,
    fp: str = "fp-oom",
    category: str = "out-of-memory",
    target: str = "b",
    phase: str = "Recovered",
    minutes: int | None = 10,
    action: str = catalog.MORE_MEMORY,
    day: int = 1,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "category": category,
        "detectedAt": f"2024-05-{day:02d}T10:00:00Z",
        "analysis": {"fingerprint": fp},
        "remediation": {"action": action},
    }
    if minutes is not None:
        status["remediation"]["finishedAt"] = f"2024-05-{day:02d}T10:{minutes:02d}:00Z"
    return {
        "metadata": {"name": name, "namespace": "ci"},
        "spec": {"target": {"kind": "Job", "name": target}},
        "status": status,
    }


HISTORY = [
    past("p1", minutes=4, day=1),
    past("p2", minutes=8, day=2),
    past("p3", minutes=30, day=3, action=catalog.RETRY, phase="RemediationFailed"),
    past("p4", fp="other", category="out-of-memory", target="b", minutes=50, day=4),
    past("p5", fp="other", category="network", target="zz", minutes=2, day=5, action=catalog.RETRY),
    past("me", minutes=1, day=6),
]


def test_similar_cases_same_fingerprint_first_then_category_and_target() -> None:
    cases = similar_cases(
        HISTORY, name="me", fingerprint="fp-oom", category="out-of-memory", target="b"
    )
    assert [c["name"] for c in cases] == ["p3", "p2", "p1", "p4"]
    assert cases[1] == {
        "name": "p2",
        "namespace": "ci",
        "category": "out-of-memory",
        "fingerprint": "fp-oom",
        "action": catalog.MORE_MEMORY,
        "result": "Recovered",
        "recoveryMinutes": 8.0,
        "detectedAt": "2024-05-02T10:00:00Z",
    }
    assert "recoveryMinutes" not in cases[0]  # it did not recover


def test_similar_cases_bounded() -> None:
    many = [past(f"p{i}", day=1 + i % 28) for i in range(40)]
    assert len(similar_cases(many, name="x", fingerprint="fp-oom", category="c", target="t")) == 5


def test_estimate_is_median_of_same_fingerprint_then_category() -> None:
    assert (
        estimate_recovery_minutes(HISTORY, fingerprint="fp-oom", category="out-of-memory") == 4.0
    )  # median of 4, 8, 1
    assert (
        estimate_recovery_minutes(HISTORY, fingerprint="new", category="out-of-memory") == 6.0
    )  # 4, 8, 50, 1
    assert (
        estimate_recovery_minutes([], fingerprint="new", category="network", llm_estimate=12.5)
        == 12.5
    )
    assert (
        estimate_recovery_minutes([], fingerprint="", category="auth")
        == DEFAULT_RECOVERY_MINUTES["auth"]
    )
    assert set(DEFAULT_RECOVERY_MINUTES) == set(CATEGORIES)


def test_preferred_action_is_what_recovered() -> None:
    cases = similar_cases(
        HISTORY, name="me", fingerprint="fp-oom", category="out-of-memory", target="b"
    )
    assert preferred_action(cases, "fp-oom") == catalog.MORE_MEMORY
    assert preferred_action(cases, "") is None
    bogus = [{"fingerprint": "f", "result": "Recovered", "action": "rm -rf /"}]
    assert preferred_action(bogus, "f") is None


def test_recovery_minutes_ignores_bad_times() -> None:
    bad = past("x")
    bad["status"]["detectedAt"] = "yesterday"
    assert recovery_minutes(bad) is None
    backwards = past("y")
    backwards["status"]["remediation"]["finishedAt"] = "2024-04-01T00:00:00Z"
    assert recovery_minutes(backwards) is None
