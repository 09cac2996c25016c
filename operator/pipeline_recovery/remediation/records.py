"""Pure builders of `status.remediation`: the current attempt, its plan, and the history."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from . import naming
from .history import parse_time
from .policy import Decision

MAX_HISTORY = 50
TERMINAL_PHASES = frozenset({"Recovered", "RemediationFailed", "ManualActionRequired"})
# status.remediation.result values
STARTING, RUNNING, SUCCEEDED, FAILED = "Starting", "Running", "Succeeded", "Failed"
WAITING, AWAITING, OFF, REFUSED, EXHAUSTED = (
    "Waiting",
    "AwaitingApproval",
    "Off",
    "Refused",
    "Exhausted",
)


def iso(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(value: object, default: float) -> float:
    parsed = parse_time(value)
    return parsed.timestamp() if parsed is not None else default


def plan_of(decision: Decision) -> dict[str, Any]:
    out: dict[str, Any] = {
        "action": decision.shaped.action,
        "parameters": {k: str(v)[:1024] for k, v in decision.shaped.parameters.items()},
    }
    reason = "; ".join(decision.notes) or decision.message
    if reason:
        out["reason"] = reason[:1024]
    return out


def history_of(status: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(h) for h in ((status.get("remediation") or {}).get("history") or ())]


def with_entry(
    history: Sequence[Mapping[str, Any]], entry: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """History with the entry for entry['jobName'] replaced (or appended), bounded."""
    out = [dict(h) for h in history if h.get("jobName") != entry.get("jobName")]
    out.append(dict(entry))
    return out[-MAX_HISTORY:]


def entry_for(history: Sequence[Mapping[str, Any]], job_name: str) -> dict[str, Any]:
    for h in history:
        if h.get("jobName") == job_name:
            return dict(h)
    return {"jobName": job_name}


def attempts_done(status: Mapping[str, Any], target_attempts: int) -> int:
    """Attempts already made: status, or the target's own lineage labels (a retry of a retry)."""
    rem = status.get("remediation") or {}
    made = rem.get("attempts") if rem.get("result") not in (AWAITING, OFF, WAITING) else None
    counted = made if isinstance(made, int) else 0
    finished = [
        int(h["attempt"]) for h in rem.get("history") or () if isinstance(h.get("attempt"), int)
    ]
    return max([counted, target_attempts, *finished])


def last_finished_at(status: Mapping[str, Any], default: float) -> float:
    """When the latest failure happened: the last attempt's end, else when it was detected."""
    ends = [epoch(h.get("finishedAt"), 0.0) for h in history_of(status) if h.get("finishedAt")]
    if ends and max(ends) > 0:
        return max(ends)
    return epoch(status.get("detectedAt"), default)


def is_claim_job(job: Mapping[str, Any]) -> bool:
    return naming.labels_of(job).get(naming.LABEL_ROLE) == naming.ROLE_REMEDIATION
