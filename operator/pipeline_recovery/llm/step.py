"""The operator flow's analyse step: when to ask the AI, and how its answer lands in status."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from pipeline_recovery import event_reasons
from pipeline_recovery import status as st
from pipeline_recovery.llm.analysis import AnalysisOutcome, Analyst
from pipeline_recovery.model import Diagnosis
from pipeline_recovery.taxonomy import UNKNOWN, info, is_transient

if TYPE_CHECKING:
    from pipeline_recovery.hooks import AnalysisResult
    from pipeline_recovery.runtime import Logger, Runtime

AI_CONDITION = "AIAnalyzed"
AI_MAX_CONFIDENCE = 0.9  # an AI verdict is never reported as certain


def analyst_of(rt: Runtime) -> Analyst:
    """The process-wide Analyst (one HTTP client, cache, breaker and budget per operator)."""
    analyst = rt.extras.get("analyst")
    if analyst is None:
        analyst = rt.extras["analyst"] = Analyst.from_settings(rt.settings)
    assert isinstance(analyst, Analyst)
    return analyst


def revise(diagnosis: Diagnosis, outcome: AnalysisOutcome, threshold: float) -> Diagnosis:
    """The diagnosis with the AI's text; its category only when the patterns were unsure."""
    answer = outcome.answer
    if answer is None:
        return diagnosis
    source: Literal["ai", "cache"] = "cache" if outcome.status == "cache" else "ai"
    revised = replace(
        diagnosis, root_cause=answer.root_cause, solution=answer.solution, source=source
    )
    unsure = diagnosis.category == UNKNOWN or diagnosis.confidence < threshold
    if unsure and answer.category is not None and answer.category != UNKNOWN:
        confidence = answer.confidence if answer.confidence is not None else 0.5
        revised = replace(
            revised,
            category=answer.category,
            severity=str(info(answer.category).severity),
            transient=is_transient(answer.category),
            # A plain retry of a transient failure is the only thing an AI verdict unlocks.
            auto_fixable=is_transient(answer.category),
            confidence=round(min(confidence, AI_MAX_CONFIDENCE), 3),
        )
    return revised


def _not_asked(mode: str | None, diagnosis: Diagnosis, threshold: float) -> tuple[str, str]:
    if mode == "Never":
        return "NotRequested", "spec.analysis.ai is Never"
    return (
        "PatternsConfident",
        f"pattern verdict {diagnosis.category} at confidence {diagnosis.confidence:.2f} "
        f"(AI is asked below {threshold:.2f} or for unknown)",
    )


async def analyse_step(
    rt: Runtime,
    recovery: Mapping[str, Any],
    diagnosis: Diagnosis,
    scans: Sequence[Any],
    k8s_evidence: Sequence[str],
    logger: Logger,
) -> AnalysisResult:
    """Ask the AI when the resource's mode says so; the pattern result stands on any failure."""
    from pipeline_recovery.hooks import AnalysisResult

    gen = int((recovery.get("metadata") or {}).get("generation") or 1)
    mode = ((recovery.get("spec") or {}).get("analysis") or {}).get("ai")
    threshold = rt.settings.ai_confidence_threshold
    base = st.pattern_analysis(diagnosis)
    analyst = analyst_of(rt)
    if not analyst.should_analyse(diagnosis, mode):
        reason, message = _not_asked(mode, diagnosis, threshold)
        condition = st.condition(AI_CONDITION, False, reason, message, gen)
        return AnalysisResult(diagnosis=diagnosis, analysis=base, conditions=[condition])
    try:
        outcome = await analyst.analyse(diagnosis, scans, k8s_evidence)
    except Exception as exc:  # a bug here must not cost the pattern diagnosis
        logger.exception("AI analysis crashed")
        outcome = AnalysisOutcome(
            "failed", diagnosis.fingerprint, reason=f"AI step error: {type(exc).__name__}",
            model=analyst.model,
        )
    ok, reason, message = outcome.condition()
    analysis = {
        **base,
        **outcome.status_analysis(),
        "fingerprint": diagnosis.fingerprint[:128],
        "outcome": outcome.status,
        "reason": outcome.reason[:1024],
    }
    result = AnalysisResult(
        diagnosis=revise(diagnosis, outcome, threshold),
        analysis=analysis,
        conditions=[st.condition(AI_CONDITION, ok == "True", reason, message, gen)],
    )
    answer = outcome.answer
    if answer is None:
        logger.info("AI analysis: %s (%s); pattern verdict stands", outcome.status, outcome.reason)
        return result
    analysis["suggestedAction"] = answer.suggested_action
    if answer.estimated_minutes is not None:
        result.status["estimatedRecoveryMinutes"] = answer.estimated_minutes
    # status.similarCases is the remediation step's list of earlier incidents (objects); the
    # AI's recollections are free text and stay with the analysis.
    analysis["similarCases"] = list(answer.similar_cases)
    if outcome.status == "ok":
        message = f"AI analysis ({outcome.model}): {answer.root_cause}"
        result.events.append((event_reasons.AI_ANALYZED, message[:1000]))
    return result
