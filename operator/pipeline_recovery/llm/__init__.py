"""AI analysis of failures through an OpenAI-compatible chat-completions API (HolySheep default)."""

from __future__ import annotations

from pipeline_recovery.llm.analysis import AnalysisOutcome, Analyst
from pipeline_recovery.llm.answer import CATALOG_ACTIONS, AIAnswer, parse_answer
from pipeline_recovery.llm.errors import (
    LLMBudgetExhausted,
    LLMCircuitOpen,
    LLMError,
    LLMInvalidAnswer,
    LLMRateLimited,
    LLMRequestRejected,
    LLMServerError,
    LLMTimeout,
)

__all__ = [
    "CATALOG_ACTIONS",
    "AIAnswer",
    "AnalysisOutcome",
    "Analyst",
    "LLMBudgetExhausted",
    "LLMCircuitOpen",
    "LLMError",
    "LLMInvalidAnswer",
    "LLMRateLimited",
    "LLMRequestRejected",
    "LLMServerError",
    "LLMTimeout",
    "parse_answer",
]
