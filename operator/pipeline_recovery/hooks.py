"""The flow's two extension points: the AI analysis step and the remediation step (plus the
outcome of Jobs the operator created). The LLM and remediation modules plug in here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline_recovery.model import Diagnosis
from pipeline_recovery.runtime import Logger, Runtime


@dataclass
class AnalysisResult:
    """What the analyse step hands back to the flow.

    diagnosis: the verdict to write (the pattern one, or one the AI step revised);
    analysis: `status.analysis` (always written: source, fingerprint, AI usage);
    status: further status fields (e.g. similarCases, estimatedRecoveryMinutes);
    conditions: extra conditions (e.g. AIAnalyzed); events: (reason, message) to post.
    """

    diagnosis: Diagnosis
    analysis: dict[str, Any]
    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)


async def analyse(rt: Runtime, recovery: Mapping[str, Any], diagnosis: Diagnosis,
                  scans: Sequence[Any], k8s_evidence: Sequence[str],
                  logger: Logger) -> AnalysisResult:
    """Hook (a), after pattern classification. The pattern verdict stands unless the AI step
    (pipeline_recovery.llm.Analyst) revises it; `recovery` is the PipelineRecovery as read."""
    from pipeline_recovery.llm.step import analyse_step

    return await analyse_step(rt, recovery, diagnosis, scans, k8s_evidence, logger)


async def remediate(rt: Runtime, recovery: Mapping[str, Any], logger: Logger) -> None:
    """Hook (b), once the diagnosis is in status (phase Diagnosed or later), and again on every
    resume and spec change of a diagnosed PipelineRecovery; must be idempotent."""
    from pipeline_recovery.remediation.executor import advance

    await advance(rt, recovery, logger)


async def on_owned_job(rt: Runtime, job: Mapping[str, Any], event_type: str | None,
                       logger: Logger) -> None:
    """Watch events of Jobs carrying labels.INCIDENT_LABEL (ones the operator created)."""
    from pipeline_recovery.remediation.outcome import on_job_event

    await on_job_event(rt, job, event_type, logger)
