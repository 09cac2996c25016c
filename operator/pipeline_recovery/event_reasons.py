"""Reasons of the Kubernetes Events the operator posts; users filter on them (a contract)."""

from __future__ import annotations

from typing import Final

# Posted on the PipelineRecovery (and mirrored on the failed Job/Pod where useful).
DIAGNOSED: Final = "Diagnosed"
DIAGNOSIS_FAILED: Final = "DiagnosisFailed"
AI_ANALYZED: Final = "AIAnalyzed"
REMEDIATION_STARTED: Final = "RemediationStarted"
REMEDIATION_SUCCEEDED: Final = "RemediationSucceeded"
REMEDIATION_FAILED: Final = "RemediationFailed"
RECOVERED: Final = "Recovered"
AWAITING_APPROVAL: Final = "AwaitingApproval"
MANUAL_ACTION_REQUIRED: Final = "ManualActionRequired"

# Event type per reason: users alert on Warning events, so only bad news is a Warning.
EVENT_TYPES: Final[dict[str, str]] = {
    DIAGNOSED: "Normal",
    DIAGNOSIS_FAILED: "Warning",
    AI_ANALYZED: "Normal",
    REMEDIATION_STARTED: "Normal",
    REMEDIATION_SUCCEEDED: "Normal",
    REMEDIATION_FAILED: "Warning",
    RECOVERED: "Normal",
    AWAITING_APPROVAL: "Normal",
    MANUAL_ACTION_REQUIRED: "Warning",
}

ALL_REASONS: Final[tuple[str, ...]] = tuple(EVENT_TYPES)


def event_type(reason: str) -> str:
    """Kubernetes Event type ("Normal" or "Warning") for one of the reasons above."""
    return EVENT_TYPES.get(reason, "Normal")
