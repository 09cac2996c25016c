"""In-memory record of Jobs started per namespace, behind the cooldown and rate-limit guards."""

from __future__ import annotations

from dataclasses import dataclass, field

RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True)
class Start:
    """One Job remediation started (or reserved the right to start)."""

    at: float
    namespace: str
    recovery: str
    target: str  # the original Job's name: retries of retries share it
    fingerprint: str


@dataclass
class StartLedger:
    """Starts of the last while; seeded from PipelineRecovery statuses after a restart."""

    horizon_seconds: float = 3600.0
    starts: list[Start] = field(default_factory=list)

    def record(self, start: Start) -> None:
        self.starts.append(start)

    def forget(self, recovery: str, at: float) -> None:
        """Drop a reservation whose Job was never created (so it does not count against others)."""
        self.starts = [s for s in self.starts if not (s.recovery == recovery and s.at == at)]

    def prune(self, now: float) -> None:
        self.starts = [s for s in self.starts if now - s.at <= self.horizon_seconds]

    def known(self, recovery: str, at: float) -> bool:
        return any(s.recovery == recovery and s.at == at for s in self.starts)

    def cooldown_wait(
        self,
        now: float,
        namespace: str,
        recovery: str,
        target: str,
        fingerprint: str,
        cooldown: float,
    ) -> tuple[float, str]:
        """Seconds to wait because another incident acted on this target or fingerprint lately."""
        wait, why = 0.0, ""
        for s in self.starts:
            if s.namespace != namespace or s.recovery == recovery:
                continue
            if s.target == target and target:
                reason = f"target {target} was remediated by {s.recovery}"
            elif s.fingerprint == fingerprint and fingerprint:
                reason = f"the same failure was remediated by {s.recovery}"
            else:
                continue
            remaining = s.at + cooldown - now
            if remaining > wait:
                wait, why = remaining, reason
        return wait, why

    def rate_wait(self, now: float, namespace: str, per_minute: int) -> float:
        """Seconds until the namespace may start another Job under its per-minute limit."""
        recent = sorted(
            s.at
            for s in self.starts
            if s.namespace == namespace and now - s.at < RATE_WINDOW_SECONDS
        )
        if len(recent) < per_minute:
            return 0.0
        return max(0.0, recent[len(recent) - per_minute] + RATE_WINDOW_SECONDS - now)
