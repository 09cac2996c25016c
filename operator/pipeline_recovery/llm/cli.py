"""`classify --ai`: the operator's AI analysis path (same redaction, budget, checks) for one log."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from pipeline_recovery.llm.analysis import NO_KEY, AnalysisOutcome, Analyst
from pipeline_recovery.llm.prompt import ScanLike
from pipeline_recovery.model import Diagnosis
from pipeline_recovery.settings import Settings, SettingsError, load_settings


def k8s_evidence_lines(diagnosis: Diagnosis) -> list[str]:
    """Kubernetes evidence (status, events) of a diagnosis as short lines for the prompt."""
    return [
        f"{s.evidence.source}: {s.evidence.text}"
        for s in diagnosis.signals
        if s.evidence.source in ("status", "events")
    ]


def outcome_json(outcome: AnalysisOutcome) -> dict[str, Any]:
    """What `classify --ai` prints under "ai" (CRD status field names)."""
    out: dict[str, Any] = {
        "status": outcome.status,
        "reason": outcome.reason,
        "analysis": outcome.status_analysis(),
    }
    answer = outcome.answer
    if answer is not None:
        out.update(
            rootCause=answer.root_cause,
            solution=answer.solution,
            similarCases=list(answer.similar_cases),
            estimatedRecoveryMinutes=answer.estimated_minutes,
            category=answer.category,
            confidence=answer.confidence,
            suggestedAction=answer.suggested_action,
        )
    return out


async def _analyse(
    settings: Settings, diagnosis: Diagnosis, scans: Sequence[ScanLike], lines: list[str]
) -> AnalysisOutcome:
    analyst = Analyst.from_settings(settings)
    try:
        return await analyst.analyse(diagnosis, scans, lines)
    finally:
        await analyst.aclose()


def analyse_for_cli(
    *,
    diagnosis: Diagnosis,
    scans: Sequence[ScanLike],
    status: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any] | None:
    """Consult the LLM as the operator would; None (and one line on stderr) when it is off."""
    del status  # its evidence is already in the diagnosis' signals
    try:
        settings = settings or load_settings()
    except SettingsError as exc:
        print(f"AI analysis is off: {exc}", file=sys.stderr)
        return None
    if settings.llm_api_key is None or not settings.llm_api_key.get_secret_value():
        print(f"AI analysis is off: {NO_KEY}", file=sys.stderr)
        return None
    outcome = asyncio.run(_analyse(settings, diagnosis, scans, k8s_evidence_lines(diagnosis)))
    if outcome.status not in ("ok", "cache"):
        print(
            f"AI analysis gave no answer ({outcome.status}): {outcome.reason}; "
            "the pattern result stands",
            file=sys.stderr,
        )
    return outcome_json(outcome)
