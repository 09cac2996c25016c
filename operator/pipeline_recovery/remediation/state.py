"""Process-wide remediation state: the start ledger (rebuilt after restarts), per-incident locks."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..runtime import Runtime
from . import history, records
from .ledger import Start, StartLedger


@dataclass
class State:
    """Process-wide remediation state kept in rt.extras: ledger, per-incident locks."""

    ledger: StartLedger = field(default_factory=StartLedger)
    seeded: set[str] = field(default_factory=set)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, key: str) -> asyncio.Lock:
        return self.locks.setdefault(key, asyncio.Lock())


def state_of(rt: Runtime) -> State:
    found = rt.extras.get("remediation")
    if not isinstance(found, State):
        found = rt.extras["remediation"] = State()
    return found


def seed(st: State, ns: str, past: list[Mapping[str, Any]]) -> None:
    """After a restart, starts recorded in statuses count against cooldown and rate limit."""
    if ns in st.seeded:
        return
    st.seeded.add(ns)
    for obj in past:
        target = str(((obj.get("spec") or {}).get("target") or {}).get("name", ""))
        name = str((obj.get("metadata") or {}).get("name", ""))
        for h in records.history_of(obj.get("status") or {}):
            at = records.epoch(h.get("startedAt"), 0.0)
            if at and not st.ledger.known(name, at):
                st.ledger.record(Start(at, ns, name, target, history.fingerprint_of(obj)))
