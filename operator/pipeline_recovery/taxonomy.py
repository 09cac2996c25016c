"""The failure taxonomy (shared/failure-taxonomy.md) as typed data: categories and defaults."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Transience(StrEnum):
    YES = "yes"
    SOMETIMES = "sometimes"
    NO = "no"


@dataclass(frozen=True)
class CategoryInfo:
    name: str
    transience: Transience
    severity: Severity
    summary: str


_ROWS: tuple[tuple[str, Transience, Severity, str], ...] = (
    ("out-of-memory", Transience.NO, Severity.CRITICAL, "a container or runtime ran out of memory"),
    ("disk-full", Transience.NO, Severity.CRITICAL, "no space left on a filesystem"),
    ("image-pull", Transience.SOMETIMES, Severity.HIGH, "the container image could not be pulled"),
    ("config-error", Transience.NO, Severity.HIGH, "the pod could not start for bad configuration"),
    ("unschedulable", Transience.SOMETIMES, Severity.HIGH, "the pod never got a node"),
    ("evicted", Transience.YES, Severity.MEDIUM, "the node evicted the pod"),
    (
        "deadline-exceeded",
        Transience.SOMETIMES,
        Severity.MEDIUM,
        "the Job or step ran past its time limit",
    ),
    ("missing-file", Transience.NO, Severity.HIGH, "a file or directory was expected and absent"),
    (
        "permission-denied",
        Transience.NO,
        Severity.HIGH,
        "a filesystem or process permission was refused",
    ),
    ("missing-module", Transience.NO, Severity.HIGH, "code imports a module that is not installed"),
    (
        "dependency-resolution",
        Transience.NO,
        Severity.HIGH,
        "the package manager could not resolve dependencies",
    ),
    ("network", Transience.YES, Severity.MEDIUM, "a connection failed or timed out"),
    ("rate-limited", Transience.YES, Severity.MEDIUM, "a remote service throttled the pipeline"),
    ("auth", Transience.NO, Severity.HIGH, "credentials were missing, wrong or expired"),
    ("compile-error", Transience.NO, Severity.HIGH, "the code did not compile or build"),
    ("test-failure", Transience.NO, Severity.MEDIUM, "the build ran and tests failed"),
    ("lint-failure", Transience.NO, Severity.LOW, "a linter or formatter check failed"),
    ("unknown", Transience.NO, Severity.LOW, "none of the above could be established"),
)

CATEGORIES: dict[str, CategoryInfo] = {
    name: CategoryInfo(name, transience, severity, summary)
    for name, transience, severity, summary in _ROWS
}
UNKNOWN = "unknown"


def info(category: str) -> CategoryInfo:
    """The taxonomy row of a category; KeyError for a name outside the taxonomy."""
    return CATEGORIES[category]


def is_transient(category: str) -> bool:
    """True when a plain retry is likely or reasonably likely to succeed."""
    return CATEGORIES[category].transience is not Transience.NO
