"""Per-incident stage timestamps (monotonic clock), off unless a benchmark switches them on."""

from __future__ import annotations

import time

# Stages of one incident in the order the flow passes them.
STAGES = ("event_seen", "recovery_created", "handler_started", "collected", "classified",
          "status_patched")

_marks: dict[str, dict[str, float]] | None = None


def enable() -> None:
    """Start recording (the bench's operator process); a real operator never calls this."""
    global _marks
    _marks = {}


def mark(key: str, stage: str) -> None:
    """First time `key` (namespace/target name) reached `stage`; a dict lookup when off."""
    if _marks is not None:
        _marks.setdefault(key, {}).setdefault(stage, time.monotonic())


def recorded() -> dict[str, dict[str, float]]:
    return dict(_marks or {})
