"""What keeps AI analysis cheap and polite: circuit breaker, token/cost budget, price table."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pipeline_recovery.llm.errors import LLMBudgetExhausted, LLMCircuitOpen

HOUR = 3600.0
DAY = 24 * HOUR


class CircuitBreaker:
    """Closed → open after N consecutive failures → half-open after `reset` seconds (one probe)."""

    def __init__(
        self, failures: int, reset_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._reset = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self._opened_at >= self._reset else "open"

    def before_call(self) -> None:
        """Raise LLMCircuitOpen unless a call may go out now (half-open lets one probe through)."""
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self._probing:
            self._probing = True
            return
        wait = max(0.0, self._reset - (self._clock() - (self._opened_at or 0.0)))
        raise LLMCircuitOpen(
            f"circuit open after {self._failures} consecutive LLM failures; next try in {wait:.0f}s"
        )

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._probing = False


@dataclass(frozen=True)
class Prices:
    """USD per million tokens by model; unknown models cost 0 (and `known` says so)."""

    table: Mapping[str, tuple[float, float]]

    def known(self, model: str) -> bool:
        return model in self.table

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        rate_in, rate_out = self.table.get(model, (0.0, 0.0))
        return (prompt_tokens * rate_in + completion_tokens * rate_out) / 1_000_000


class Budget:
    """Sliding-window token limits per hour and per day and a cost limit per day.

    A request reserves its worst case (prompt + max completion) before it goes out and settles
    to the real usage after, so many concurrent analyses cannot all slip under the limit.
    A limit of 0 means no limit of that kind.
    """

    def __init__(
        self,
        tokens_per_hour: int,
        tokens_per_day: int,
        cost_usd_per_day: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_hour = tokens_per_hour
        self._per_day = tokens_per_day
        self._cost_per_day = cost_usd_per_day
        self._clock = clock
        self._spent: deque[tuple[float, int, float]] = deque()  # (when, tokens, usd)
        self._reserved_tokens = 0
        self._reserved_usd = 0.0

    def _window(self, seconds: float) -> tuple[int, float]:
        now = self._clock()
        while self._spent and now - self._spent[0][0] >= DAY:
            self._spent.popleft()
        tokens = sum(t for when, t, _usd in self._spent if now - when < seconds)
        usd = sum(u for when, _t, u in self._spent if now - when < seconds)
        return tokens, usd

    def reserve(self, tokens: int, usd: float) -> None:
        """Hold `tokens`/`usd` for a request, or raise LLMBudgetExhausted naming the limit."""
        hour_tokens, _ = self._window(HOUR)
        day_tokens, day_usd = self._window(DAY)
        pending = self._reserved_tokens + tokens
        if self._per_hour and hour_tokens + pending > self._per_hour:
            raise LLMBudgetExhausted(
                f"hourly token budget reached ({hour_tokens}/{self._per_hour} used)"
            )
        if self._per_day and day_tokens + pending > self._per_day:
            raise LLMBudgetExhausted(
                f"daily token budget reached ({day_tokens}/{self._per_day} used)"
            )
        if self._cost_per_day and day_usd + self._reserved_usd + usd > self._cost_per_day:
            raise LLMBudgetExhausted(
                f"daily cost budget reached (${day_usd:.4f}/${self._cost_per_day:g} spent)"
            )
        self._reserved_tokens += tokens
        self._reserved_usd += usd

    def settle(self, reserved_tokens: int, reserved_usd: float, tokens: int, usd: float) -> None:
        """Replace a reservation with what the request really used (0 if it never ran)."""
        self._reserved_tokens = max(0, self._reserved_tokens - reserved_tokens)
        self._reserved_usd = max(0.0, self._reserved_usd - reserved_usd)
        if tokens or usd:
            self._spent.append((self._clock(), tokens, usd))
