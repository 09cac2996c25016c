"""The LLM client's one exception tree; messages are one line and never carry the API key."""

from __future__ import annotations


class LLMError(Exception):
    """Any failure to get a usable answer from the LLM endpoint."""

    outcome = "error"  # the `outcome` label of llm_requests_total

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(" ".join(reason.split())[:300])
        self.retry_after = retry_after  # seconds the server asked us to wait, if it did

    @property
    def reason(self) -> str:
        return str(self)


class LLMTimeout(LLMError):
    outcome = "timeout"


class LLMRateLimited(LLMError):
    outcome = "rate_limited"


class LLMServerError(LLMError):
    """5xx after the retries, or a transport failure (connection refused, reset)."""


class LLMRequestRejected(LLMError):
    """4xx other than 429: bad key, unknown model, request too large; retrying will not help."""


class LLMInvalidAnswer(LLMError):
    """The endpoint answered, but not with what the answer schema accepts."""

    outcome = "invalid"


class LLMCircuitOpen(LLMError):
    outcome = "circuit_open"


class LLMBudgetExhausted(LLMError):
    outcome = "budget_exhausted"
