"""Shared value types that flow between the classifier, the LLM analyst, remediation and status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

EvidenceSource = Literal["log", "status", "events", "inline"]


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence: where it came from, the (redacted) line, and the rule that matched."""

    source: EvidenceSource
    text: str
    line: int | None = None  # 1-based line number within that container's log
    container: str | None = None
    pattern_id: str | None = None
    captures: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Signal:
    """A rule hit (log or Kubernetes status) that points at a category."""

    category: str
    rule_id: str
    priority: int
    evidence: Evidence
    offset: int = 0  # byte offset in its stream; orders signals "earliest first"


@dataclass(frozen=True)
class Diagnosis:
    """The verdict for one failure: the category of the taxonomy and why."""

    category: str
    severity: str
    confidence: float
    transient: bool
    auto_fixable: bool
    root_cause: str
    solution: str
    evidence: Evidence | None
    fingerprint: str
    signals: tuple[Signal, ...] = ()
    source: Literal["patterns", "ai", "cache"] = "patterns"
