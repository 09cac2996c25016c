"""The Analyst: decides whether to ask the LLM, asks it safely, and reports what happened."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx

from pipeline_recovery import metrics
from pipeline_recovery.llm.answer import AIAnswer, parse_answer
from pipeline_recovery.llm.cache import InFlight, TTLCache
from pipeline_recovery.llm.client import LLMClient
from pipeline_recovery.llm.errors import LLMBudgetExhausted, LLMCircuitOpen, LLMError
from pipeline_recovery.llm.guard import Budget, CircuitBreaker, Prices
from pipeline_recovery.llm.prompt import Prompt, ScanLike, build_prompt
from pipeline_recovery.llm.tokens import count_tokens
from pipeline_recovery.model import Diagnosis
from pipeline_recovery.settings import AIMode, Settings
from pipeline_recovery.taxonomy import UNKNOWN

log = logging.getLogger(__name__)

OutcomeStatus = Literal[
    "ok", "cache", "disabled", "skipped_budget", "circuit_open", "failed", "invalid"
]
NO_KEY = "no API key (set PIPELINE_RECOVERY_LLM_API_KEY or HOLYSHEEP_API_KEY)"

# status -> (AIAnalyzed condition status, reason)
_CONDITIONS: dict[str, tuple[str, str]] = {
    "ok": ("True", "Analyzed"),
    "cache": ("True", "AnsweredFromCache"),
    "disabled": ("False", "Disabled"),
    "skipped_budget": ("False", "BudgetExhausted"),
    "circuit_open": ("False", "CircuitOpen"),
    "invalid": ("False", "InvalidAnswer"),
}
_FAILED_REASONS = {"timeout": "Timeout", "rate_limited": "RateLimited"}


@dataclass(frozen=True)
class AnalysisOutcome:
    """What one analysis did. `answer` is set only for ok/cache; `reason` is always one line."""

    status: OutcomeStatus
    fingerprint: str
    answer: AIAnswer | None = None
    reason: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: int = 0
    error_kind: str = ""  # for failed: timeout, rate_limited, error

    @property
    def source(self) -> Literal["ai", "cache", "patterns"]:
        return "ai" if self.status == "ok" else "cache" if self.status == "cache" else "patterns"

    def status_analysis(self) -> dict[str, Any]:
        """The `status.analysis` block of design.md (camelCase)."""
        return {
            "source": self.source,
            "model": self.model,
            "promptTokens": self.prompt_tokens,
            "completionTokens": self.completion_tokens,
            "costUSD": round(self.cost_usd, 6),
            "latencyMs": self.latency_ms,
            "fingerprint": self.fingerprint,
        }

    def condition(self) -> tuple[str, str, str]:
        """(status, reason, message) of the `AIAnalyzed` condition."""
        status, reason = _CONDITIONS.get(
            self.status, ("False", _FAILED_REASONS.get(self.error_kind, "Failed"))
        )
        message = self.reason or ("analysed by " + self.model if status == "True" else "")
        return status, reason, message[:300]


class Analyst:
    """Redacted, bounded, cached, schema-checked AI analysis; one per operator process."""

    def __init__(
        self,
        settings: Settings,
        client: LLMClient | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._client = client
        self.model = settings.llm_model
        self._cache: TTLCache[AnalysisOutcome] = TTLCache(
            settings.llm_cache_size, settings.llm_cache_ttl_seconds, clock
        )
        self._inflight: InFlight[AnalysisOutcome] = InFlight()
        self._breaker = CircuitBreaker(
            settings.llm_circuit_failures, settings.llm_circuit_reset_seconds, clock
        )
        self._budget = Budget(
            settings.llm_tokens_per_hour,
            settings.llm_tokens_per_day,
            settings.llm_cost_usd_per_day,
            clock,
        )
        self._prices = Prices(settings.llm_prices)
        self._slots = asyncio.Semaphore(settings.llm_concurrency)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> Analyst:
        """An Analyst; without an API key it is disabled (every analysis says so)."""
        if settings.llm_api_key is None or not settings.llm_api_key.get_secret_value():
            return cls(settings, None)
        client = LLMClient(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            model=settings.llm_model,
            timeout_seconds=settings.llm_timeout_seconds,
            max_retries=settings.llm_max_retries,
            backoff_seconds=settings.llm_retry_backoff_seconds,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_completion_tokens,
            transport=transport,
        )
        return cls(settings, client)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    @property
    def circuit_state(self) -> str:
        return self._breaker.state

    def should_analyse(self, diagnosis: Diagnosis, mode: AIMode | str | None = None) -> bool:
        """spec.analysis.ai: Never / Always / Auto (only when the patterns are unsure)."""
        mode = mode or self._settings.ai_mode
        if mode == "Never":
            return False
        if mode == "Always":
            return True
        return (
            diagnosis.category == UNKNOWN
            or diagnosis.confidence < self._settings.ai_confidence_threshold
        )

    def build_prompt(
        self, diagnosis: Diagnosis, scans: Sequence[ScanLike], k8s_evidence_lines: Sequence[str]
    ) -> Prompt:
        return build_prompt(
            diagnosis,
            scans,
            k8s_evidence_lines,
            max_prompt_tokens=self._settings.llm_max_prompt_tokens,
        )

    async def analyse(
        self,
        diagnosis: Diagnosis,
        scans: Sequence[ScanLike],
        k8s_evidence_lines: Sequence[str] = (),
    ) -> AnalysisOutcome:
        """Ask the LLM about one failure; never raises for LLM trouble (see outcome.status)."""
        fingerprint = diagnosis.fingerprint
        if self._client is None:
            return AnalysisOutcome("disabled", fingerprint, reason=NO_KEY, model=self.model)
        prompt = self.build_prompt(diagnosis, scans, k8s_evidence_lines)
        if prompt.tokens > self._settings.llm_max_prompt_tokens:
            metrics.LLM_REQUESTS.labels(model=self.model, outcome="budget_exhausted").inc()
            return AnalysisOutcome(
                "skipped_budget",
                fingerprint,
                reason=f"prompt needs {prompt.tokens} tokens, over llm_max_prompt_tokens",
                model=self.model,
            )
        key = hashlib.sha256(f"{self.model}\n{prompt.cache_material}".encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            metrics.LLM_CACHE_HITS.inc()
            return self._from_cache(cached, fingerprint)
        outcome, shared = await self._inflight.run(key, lambda: self._ask(prompt, key, fingerprint))
        if not shared:
            return outcome
        if outcome.status == "ok":
            metrics.LLM_CACHE_HITS.inc()
            return self._from_cache(outcome, fingerprint)
        # A twin's failure is ours too, but it cost us nothing.
        return replace(
            outcome,
            fingerprint=fingerprint,
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            latency_ms=0,
        )

    def _from_cache(self, outcome: AnalysisOutcome, fingerprint: str) -> AnalysisOutcome:
        return replace(
            outcome,
            status="cache",
            fingerprint=fingerprint,
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            latency_ms=0,
            reason="same failure analysed earlier",
        )

    async def _ask(self, prompt: Prompt, key: str, fingerprint: str) -> AnalysisOutcome:
        assert self._client is not None
        model = self.model
        reserve_tokens = prompt.tokens + self._settings.llm_max_completion_tokens
        reserve_usd = self._prices.cost(
            model, prompt.tokens, self._settings.llm_max_completion_tokens
        )
        try:
            self._budget.reserve(reserve_tokens, reserve_usd)
        except LLMBudgetExhausted as exc:
            metrics.LLM_REQUESTS.labels(model=model, outcome=exc.outcome).inc()
            return AnalysisOutcome("skipped_budget", fingerprint, reason=exc.reason, model=model)
        used_tokens, used_usd = 0, 0.0
        try:
            try:
                self._breaker.before_call()
            except LLMCircuitOpen as exc:
                metrics.LLM_REQUESTS.labels(model=model, outcome=exc.outcome).inc()
                return AnalysisOutcome("circuit_open", fingerprint, reason=exc.reason, model=model)
            async with self._slots:
                started = time.perf_counter()
                try:
                    result = await self._client.complete(prompt.messages)
                except LLMError as exc:
                    elapsed = time.perf_counter() - started
                    metrics.LLM_REQUEST_DURATION.observe(elapsed)
                    metrics.LLM_REQUESTS.labels(model=model, outcome=exc.outcome).inc()
                    self._breaker.failure()
                    log.warning("AI analysis failed: %s", exc.reason)
                    status: OutcomeStatus = "invalid" if exc.outcome == "invalid" else "failed"
                    return AnalysisOutcome(
                        status,
                        fingerprint,
                        reason=exc.reason,
                        model=model,
                        latency_ms=int(elapsed * 1000),
                        error_kind=exc.outcome,
                    )
                elapsed = time.perf_counter() - started
            self._breaker.success()
            prompt_tokens = result.prompt_tokens or prompt.tokens
            completion_tokens = result.completion_tokens or count_tokens(result.content)
            used_tokens = prompt_tokens + completion_tokens
            used_usd = self._prices.cost(model, prompt_tokens, completion_tokens)
            metrics.LLM_REQUEST_DURATION.observe(elapsed)
            metrics.LLM_TOKENS.labels(model=model, direction="prompt").inc(prompt_tokens)
            metrics.LLM_TOKENS.labels(model=model, direction="completion").inc(completion_tokens)
            metrics.LLM_COST.labels(model=model).inc(used_usd)
            spent = AnalysisOutcome(
                "ok",
                fingerprint,
                model=model,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                cost_usd=used_usd,
                latency_ms=int(elapsed * 1000),
            )
            try:
                answer = parse_answer(result.content)
            except LLMError as exc:
                metrics.LLM_REQUESTS.labels(model=model, outcome=exc.outcome).inc()
                log.warning("AI answer rejected: %s", exc.reason)
                return replace(spent, status="invalid", reason=exc.reason, error_kind=exc.outcome)
            metrics.LLM_REQUESTS.labels(model=model, outcome="ok").inc()
            outcome = replace(spent, answer=answer)
            self._cache.put(key, outcome)
            return outcome
        finally:
            self._budget.settle(reserve_tokens, reserve_usd, used_tokens, used_usd)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
