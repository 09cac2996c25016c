"""Pure builders of PipelineRecovery status: phases, conditions, diagnosis fields."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline_recovery.model import Diagnosis, Evidence

PHASES = ("Pending", "Collecting", "Diagnosing", "Diagnosed", "AwaitingApproval", "Remediating",
          "Recovered", "RemediationFailed", "ManualActionRequired", "Error")
# Phases in which the diagnosis is already written: a resume goes straight to remediation.
DIAGNOSED_PHASES = frozenset({"Diagnosed", "AwaitingApproval", "Remediating", "Recovered",
                              "RemediationFailed", "ManualActionRequired"})
IN_PROGRESS_PHASES = frozenset({"Pending", "Collecting", "Diagnosing"})

TEXT_LIMIT = 4000  # below the CRD's maxLength of 4096 for free-text fields


def now_iso(now: datetime.datetime | None = None) -> str:
    now = now or datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def clip(text: str, limit: int = TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def condition(type_: str, ok: bool | None, reason: str, message: str, generation: int,
              now: str | None = None) -> dict[str, Any]:
    status = "Unknown" if ok is None else "True" if ok else "False"
    return {"type": type_, "status": status, "reason": reason, "message": clip(message),
            "lastTransitionTime": now or now_iso(), "observedGeneration": generation}


def merge_conditions(existing: Iterable[Mapping[str, Any]], updates: Iterable[Mapping[str, Any]]
                     ) -> list[dict[str, Any]]:
    """Replace conditions by type; keep lastTransitionTime when the status did not change."""
    merged: dict[str, dict[str, Any]] = {str(c.get("type")): dict(c) for c in existing}
    for new in updates:
        old = merged.get(str(new["type"]))
        entry = dict(new)
        if old is not None and old.get("status") == new.get("status"):
            entry["lastTransitionTime"] = old.get("lastTransitionTime", new["lastTransitionTime"])
        merged[str(new["type"])] = entry
    return list(merged.values())


def phase_status(phase: str, message: str, generation: int, existing: Mapping[str, Any],
                 conditions: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A status patch that moves to `phase` and updates conditions."""
    out: dict[str, Any] = {"phase": phase, "message": clip(message, 1000),
                           "observedGeneration": generation}
    if conditions:
        out["conditions"] = merge_conditions(existing.get("conditions") or [], conditions)
    if not existing.get("detectedAt"):
        out["detectedAt"] = now_iso()
    return out


def evidence_status(evidence: Evidence | None, pod: str | None, redact: Any) -> dict[str, Any]:
    if evidence is None:
        return {}
    out: dict[str, Any] = {"source": evidence.source, "text": clip(redact(evidence.text))}
    if evidence.container:
        out["container"] = evidence.container
    if pod and evidence.source == "log":
        out["pod"] = pod
    if evidence.line is not None:
        out["line"] = max(0, evidence.line)
    if evidence.pattern_id:
        out["patternId"] = evidence.pattern_id
    return out


def diagnosis_status(diag: Diagnosis, evidence: Mapping[str, Any], redact: Any) -> dict[str, Any]:
    """The diagnosis fields of design.md (text fields redacted and bounded)."""
    return {
        "category": diag.category,
        "severity": str(diag.severity),
        "confidence": round(float(min(1.0, max(0.0, diag.confidence))), 3),
        "transient": bool(diag.transient),
        "autoFixable": bool(diag.auto_fixable),
        "rootCause": clip(redact(diag.root_cause)),
        "solution": clip(redact(diag.solution)),
        "evidence": dict(evidence),
        "diagnosedAt": now_iso(),
    }


def pattern_analysis(diag: Diagnosis) -> dict[str, Any]:
    """`status.analysis` when no LLM was involved (the AI hook may replace it)."""
    return {"source": "patterns", "fingerprint": diag.fingerprint[:128],
            "patternCategory": diag.category,
            "patternConfidence": round(float(min(1.0, max(0.0, diag.confidence))), 3)}
