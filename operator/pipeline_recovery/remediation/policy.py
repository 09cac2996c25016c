"""Policy: mode, approval, attempt cap, backoff, cooldown and rate limit decide what runs (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..settings import RemediationMode, Settings
from . import catalog
from .ledger import StartLedger
from .shaping import Failure, Shaped, choose

ABSOLUTE_MAX_ATTEMPTS = 10
MAX_BACKOFF_SECONDS = 3600.0

DecisionKind = Literal["run", "wait", "await-approval", "off", "manual", "exhausted"]


@dataclass(frozen=True)
class Decision:
    """What the executor does next, with the shaped action and a one-line message for status."""

    kind: DecisionKind
    shaped: Shaped
    attempt: int  # the attempt number this action is (1-based), or the attempts made when done
    message: str
    wait_seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)


def effective_mode(spec_mode: object, settings: Settings, namespace: str) -> RemediationMode:
    """spec.remediation.mode when valid, else the namespace default from settings."""
    if spec_mode in ("Auto", "Manual", "Off"):
        return spec_mode
    return settings.mode_for(namespace)


def effective_max_attempts(spec_value: object, settings: Settings) -> int:
    """spec.remediation.maxAttempts bounded to [0, ABSOLUTE_MAX_ATTEMPTS]; settings when absent."""
    if isinstance(spec_value, int) and not isinstance(spec_value, bool):
        return max(0, min(ABSOLUTE_MAX_ATTEMPTS, spec_value))
    return min(ABSOLUTE_MAX_ATTEMPTS, settings.remediation_max_attempts)


def backoff_seconds(category: str, action: str, attempt: int, base: float) -> float:
    """Exponential backoff before the attempt-th plain retry of a transient failure, else 0."""
    if action != catalog.RETRY or category not in catalog.BACKOFF_CATEGORIES or attempt < 1:
        return 0.0
    return float(min(MAX_BACKOFF_SECONDS, base * 2 ** (attempt - 1)))


def decide(
    failure: Failure,
    *,
    settings: Settings,
    mode: RemediationMode,
    approved: bool,
    max_attempts: int,
    attempts_done: int,
    failed_at: float,
    now: float,
    ledger: StartLedger,
    target: str,
) -> Decision:
    """The next step for a diagnosed failure; every guard applies before anything may run."""
    shaped, notes = choose(failure, settings, attempts_done)
    attempt = attempts_done + 1
    tail = tuple(notes)
    if shaped.action == catalog.NONE:
        reason = shaped.reason or "no automatic action applies"
        return Decision("manual", shaped, attempts_done, reason, notes=tail)
    if mode == "Off":
        return Decision(
            "off", shaped, attempts_done, "remediation is Off; nothing runs", notes=tail
        )
    if attempts_done >= max_attempts:
        msg = f"{attempts_done} of at most {max_attempts} attempts made; stopping"
        kind: DecisionKind = "exhausted" if attempts_done else "manual"
        return Decision(kind, shaped, attempts_done, msg, notes=tail)
    if mode == "Manual" and not approved:
        msg = f"planned {shaped.action}; waiting for spec.remediation.approved: true"
        return Decision("await-approval", shaped, attempt, msg, notes=tail)
    delay = backoff_seconds(
        failure.category, shaped.action, attempt, settings.remediation_backoff_seconds
    )
    if failed_at + delay > now:
        wait = failed_at + delay - now
        return Decision(
            "wait",
            shaped,
            attempt,
            f"backing off {delay:g}s before attempt {attempt}",
            wait,
            notes=tail,
        )
    cool, why = ledger.cooldown_wait(
        now,
        failure.namespace,
        failure.recovery,
        target,
        failure.fingerprint,
        settings.remediation_cooldown_seconds,
    )
    if cool > 0:
        return Decision("wait", shaped, attempt, f"cooldown: {why}", cool, notes=tail)
    rate = ledger.rate_wait(now, failure.namespace, settings.remediation_namespace_jobs_per_minute)
    if rate > 0:
        msg = (
            f"namespace rate limit of {settings.remediation_namespace_jobs_per_minute} "
            "remediation Jobs per minute reached"
        )
        return Decision("wait", shaped, attempt, msg, rate, notes=tail)
    return Decision(
        "run", shaped, attempt, f"running {shaped.action} (attempt {attempt})", notes=tail
    )
