"""Memory of past incidents: similar cases, what worked, and an estimate of recovery time (pure)."""

from __future__ import annotations

import datetime
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from . import catalog

MAX_SIMILAR = 5
# Minutes a person typically needs when nothing was learnt yet (automatic fixes are quicker).
DEFAULT_RECOVERY_MINUTES: dict[str, float] = {
    "out-of-memory": 10.0,
    "disk-full": 15.0,
    "image-pull": 15.0,
    "config-error": 20.0,
    "unschedulable": 20.0,
    "evicted": 5.0,
    "deadline-exceeded": 15.0,
    "missing-file": 15.0,
    "permission-denied": 20.0,
    "missing-module": 20.0,
    "dependency-resolution": 30.0,
    "network": 5.0,
    "rate-limited": 10.0,
    "auth": 30.0,
    "compile-error": 30.0,
    "test-failure": 30.0,
    "lint-failure": 10.0,
    "unknown": 60.0,
}
RECOVERED = "Recovered"


def parse_time(value: object) -> datetime.datetime | None:
    """An RFC 3339 timestamp as an aware datetime, None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def fingerprint_of(obj: Mapping[str, Any]) -> str:
    return str((_status(obj).get("analysis") or {}).get("fingerprint") or "")


def recovery_minutes(obj: Mapping[str, Any]) -> float | None:
    """Minutes from the failure being seen to the recovery, for recovered incidents only."""
    status = _status(obj)
    if status.get("phase") != RECOVERED:
        return None
    start = parse_time(status.get("detectedAt"))
    end = parse_time((status.get("remediation") or {}).get("finishedAt"))
    if start is None or end is None or end < start:
        return None
    return round((end - start).total_seconds() / 60.0, 2)


def _matches(
    obj: Mapping[str, Any], name: str, fingerprint: str, category: str, target: str
) -> int:
    """2 for the same fingerprint, 1 for the same category and target, 0 otherwise."""
    if (obj.get("metadata") or {}).get("name") == name:
        return 0
    if fingerprint and fingerprint_of(obj) == fingerprint:
        return 2
    same_target = ((obj.get("spec") or {}).get("target") or {}).get("name") == target
    if target and same_target and _status(obj).get("category") == category:
        return 1
    return 0


def _case(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta, status = obj.get("metadata") or {}, _status(obj)
    case: dict[str, Any] = {
        "name": str(meta.get("name", "")),
        "namespace": str(meta.get("namespace", "")),
        "category": str(status.get("category", "")),
        "fingerprint": fingerprint_of(obj)[:128],
        "action": str((status.get("remediation") or {}).get("action") or catalog.NONE),
        "result": str(status.get("phase", "")),
    }
    minutes = recovery_minutes(obj)
    if minutes is not None:
        case["recoveryMinutes"] = minutes
    if status.get("detectedAt"):
        case["detectedAt"] = str(status["detectedAt"])
    return case


def similar_cases(
    past: Sequence[Mapping[str, Any]], *, name: str, fingerprint: str, category: str, target: str
) -> list[dict[str, Any]]:
    """Earlier incidents like this one, closest and most recent first, with what was done."""
    scored = [
        (score, obj)
        for obj in past
        if (score := _matches(obj, name, fingerprint, category, target))
    ]
    scored.sort(key=lambda item: str(_status(item[1]).get("detectedAt") or ""), reverse=True)
    scored.sort(key=lambda item: -item[0])
    return [_case(obj) for _, obj in scored[:MAX_SIMILAR]]


def preferred_action(cases: Sequence[Mapping[str, Any]], fingerprint: str) -> str | None:
    """The catalog action that most often recovered this fingerprint before."""
    worked = Counter(
        c["action"]
        for c in cases
        if c.get("fingerprint") == fingerprint
        and fingerprint
        and c.get("result") == RECOVERED
        and catalog.is_catalog_action(c.get("action"))
        and c.get("action") != catalog.NONE
    )
    return worked.most_common(1)[0][0] if worked else None


def estimate_recovery_minutes(
    past: Sequence[Mapping[str, Any]],
    *,
    fingerprint: str,
    category: str,
    llm_estimate: float | None = None,
) -> float:
    """Median recovery time of past cases (same fingerprint, else category), else AI or default."""

    def same_fingerprint(obj: Mapping[str, Any]) -> bool:
        return bool(fingerprint) and fingerprint_of(obj) == fingerprint

    def same_category(obj: Mapping[str, Any]) -> bool:
        return _status(obj).get("category") == category

    for same in (same_fingerprint, same_category):
        minutes = [m for o in past if same(o) and (m := recovery_minutes(o)) is not None]
        if minutes:
            return round(float(statistics.median(minutes)), 2)
    if llm_estimate is not None and llm_estimate >= 0:
        return float(llm_estimate)
    return DEFAULT_RECOVERY_MINUTES.get(category, DEFAULT_RECOVERY_MINUTES["unknown"])
