"""The catalog of remediation actions and which of them policy allows for each failure category."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

RETRY: Final = "retry"
MORE_MEMORY: Final = "retry-with-more-memory"
MORE_STORAGE: Final = "retry-with-more-storage"
LONGER_DEADLINE: Final = "retry-with-longer-deadline"
CREATE_DIRECTORY: Final = "create-directory"
CLEAR_CACHE: Final = "clear-cache"
NONE: Final = "none"


@dataclass(frozen=True)
class Action:
    """One reviewed action shape: what it does and whether it re-runs the pipeline step."""

    name: str
    description: str
    reruns_target: bool  # ends with a re-created copy of the failed Job
    authors_job: bool  # runs a Job of our own (fixed argv) before the retry


CATALOG: Final[dict[str, Action]] = {
    a.name: a
    for a in (
        Action(RETRY, "re-create the failed Job from its spec", True, False),
        Action(
            MORE_MEMORY, "re-create the Job with the failed container's memory raised", True, False
        ),
        Action(MORE_STORAGE, "re-create the Job with ephemeral-storage raised", True, False),
        Action(
            LONGER_DEADLINE, "re-create the Job with a longer activeDeadlineSeconds", True, False
        ),
        Action(
            CREATE_DIRECTORY,
            "mkdir -p a missing directory inside a mounted claim, then retry",
            True,
            True,
        ),
        Action(
            CLEAR_CACHE, "empty a cache directory inside a mounted claim, then retry", True, True
        ),
        Action(NONE, "diagnosis only; a person acts on the solution text", False, False),
    )
}

# category -> actions policy may take, best first. Anything not listed is never taken, whatever
# an LLM or a past incident suggests.
ALLOWED: Final[dict[str, tuple[str, ...]]] = {
    "out-of-memory": (MORE_MEMORY,),
    "disk-full": (MORE_STORAGE, CLEAR_CACHE),
    "image-pull": (RETRY,),
    "config-error": (),
    "unschedulable": (),
    "evicted": (RETRY,),
    "deadline-exceeded": (LONGER_DEADLINE, RETRY),
    "missing-file": (CLEAR_CACHE, CREATE_DIRECTORY),
    "permission-denied": (),
    "missing-module": (),
    "dependency-resolution": (CLEAR_CACHE,),
    "network": (RETRY,),
    "rate-limited": (RETRY,),
    "auth": (),
    "compile-error": (),
    "test-failure": (),
    "lint-failure": (),
    "unknown": (),
}

# Categories whose plain retry waits with exponential backoff between attempts.
BACKOFF_CATEGORIES: Final = frozenset(
    {"network", "rate-limited", "evicted", "image-pull", "deadline-exceeded"}
)
# "sometimes transient" in the taxonomy: a plain retry is reasonable once, not more.
RETRY_ONCE_CATEGORIES: Final = frozenset({"image-pull", "deadline-exceeded"})


def allowed_actions(category: str) -> tuple[str, ...]:
    """The catalog actions policy allows for a category (empty: diagnosis only)."""
    return ALLOWED.get(category, ())


def is_catalog_action(name: object) -> bool:
    """True for a name in the catalog (the LLM's free text is checked with this)."""
    return isinstance(name, str) and name in CATALOG
