"""Turning a catalog action into concrete, validated parameters for one failed Job (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..settings import Settings
from . import catalog
from .paths import ClaimPath, PathRefused, locate_in_claim
from .resources import (
    PlanError,
    ResourceChange,
    find_container,
    plan_deadline_raise,
    plan_resource_raise,
)

_QUOTED_PATH = re.compile(r"""['"\u2018\u2019\u201c\u201d`](/[^'"\u2018\u2019\u201c\u201d`]*)""")
_BARE_PATH = re.compile(r"(?<![\w/.])(/[^\s'\"`]+)")
# npm's, yarn's, pip's, Gradle's ... cache directories; a path under one of them is cache content.
CACHE_MARKERS = frozenset(
    {".npm", "_cacache", ".yarn-cache", ".cache", ".gradle", ".m2", ".pnpm-store"}
)
CACHE_ENV = (
    "npm_config_cache",
    "NPM_CONFIG_CACHE",
    "YARN_CACHE_FOLDER",
    "PIP_CACHE_DIR",
    "GRADLE_USER_HOME",
    "GOMODCACHE",
    "XDG_CACHE_HOME",
)
_CORRUPT_CACHE = re.compile(
    r"EINTEGRITY|integrity checksum failed|cache (?:is )?corrupt|"
    r"corrupted? cache|bad cache|invalid cache",
    re.IGNORECASE,
)
_DIR_HINT = re.compile(r"\b(?:scandir|opendir|chdir|mkdir|rmdir|uv_cwd)\b", re.IGNORECASE)
_PERMANENT_PULL = re.compile(
    r"manifest unknown|not found|pull access denied|unauthorized|"
    r"denied|invalid reference|InvalidImageName",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    """What remediation knows about one failure (all of it data, none of it ever executed)."""

    namespace: str
    recovery: str
    recovery_uid: str
    category: str
    fingerprint: str
    solution: str = ""
    evidence_text: str = ""
    evidence_path: str | None = None  # a `path` capture of the rule that matched, if any
    container: str | None = None
    job: Mapping[str, Any] | None = None  # the failed Job (None for a bare Pod or an inline log)
    pod: Mapping[str, Any] | None = None  # one failed pod of it, for its mounts
    suggestion: str | None = None  # the LLM's suggested action, if any
    preferred: str | None = None  # the action that worked before for this fingerprint


@dataclass(frozen=True)
class Shaped:
    """An action with its parameters, ready for policy and then for the Job builders."""

    action: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""
    resource_change: ResourceChange | None = None
    deadline_change: Mapping[str, str] | None = None
    claim_path: ClaimPath | None = None


def candidate_paths(failure: Failure) -> list[str]:
    """Paths the evidence names, whole: a hostile path is refused, never truncated to safety."""
    out: list[str] = []
    if failure.evidence_path:
        out.append(failure.evidence_path)
    text = failure.evidence_text or ""
    out.extend(m.group(1) for m in _QUOTED_PATH.finditer(text))
    if not out:
        out.extend(m.group(1).rstrip(":,;.)") for m in _BARE_PATH.finditer(text))
    return out[:4]


def _pod_spec(failure: Failure) -> Mapping[str, Any]:
    if failure.pod is not None and (failure.pod.get("spec") or {}):
        return failure.pod["spec"]  # type: ignore[no-any-return]
    job_spec = (failure.job or {}).get("spec") or {}
    return (job_spec.get("template") or {}).get("spec") or {}


def _cache_root(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        if part in CACHE_MARKERS:
            return "/" + "/".join(parts[: index + 1])
    return None


def _claim(failure: Failure, path: str, action: str) -> ClaimPath:
    where = locate_in_claim(path, _pod_spec(failure), failure.container)
    if not where.relative:
        raise PathRefused(f"refusing {action} on the root of claim {where.claim}")
    return where


def _shape_claim_action(failure: Failure, action: str) -> Shaped:
    paths = candidate_paths(failure)
    if action == catalog.CLEAR_CACHE:
        roots = [root for p in paths if (root := _cache_root(p))]
        missing = paths[0].rstrip("/") if paths else ""
        if failure.category == "missing-file" and missing and _cache_root(missing) == missing:
            # The cache directory itself is what is missing: there is nothing in it to clear,
            # and `find` on it would fail; creating it (create-directory) is the remedy.
            raise PlanError("the cache directory itself is missing; nothing to clear")
        if not roots and _CORRUPT_CACHE.search(failure.evidence_text or ""):
            spec = find_container(_pod_spec(failure), failure.container) if failure.job else {}
            env = {e.get("name"): e.get("value") for e in spec.get("env") or () if "value" in e}
            roots = [str(env[name]) for name in CACHE_ENV if env.get(name)]
        if not roots:
            raise PlanError("no cache directory named by the evidence")
        where = _claim(failure, roots[0], action)
    else:
        if not paths:
            raise PlanError("the evidence names no path")
        path = paths[0]
        looks_like_dir = path.endswith("/") or bool(_DIR_HINT.search(failure.evidence_text or ""))
        where = _claim(failure, path, action)
        if not looks_like_dir:
            # A missing *file* is not ours to invent; creating its directory is the safe half.
            parent = "/".join(where.relative.split("/")[:-1])
            where = ClaimPath(where.claim, where.mount_path, parent)
            if not where.relative:
                raise PathRefused(
                    "the missing file sits at the root of the claim; nothing to create"
                )
    return Shaped(action, {"claim": where.claim, "path": where.relative}, claim_path=where)


def shape(failure: Failure, action: str, settings: Settings, attempts_done: int) -> Shaped:
    """Concrete parameters of an action for this failure; PlanError or PathRefused if none."""
    if action not in catalog.allowed_actions(failure.category):
        raise PlanError(f"{action} is not allowed for {failure.category}")
    if failure.job is None:
        raise PlanError("no Job to re-create (bare Pod or inline log)")
    spec = _pod_spec(failure)
    if action == catalog.RETRY:
        if failure.category in catalog.RETRY_ONCE_CATEGORIES and attempts_done >= 1:
            raise PlanError(f"{failure.category} is retried once only")
        if failure.category == "image-pull" and _PERMANENT_PULL.search(failure.evidence_text or ""):
            raise PlanError("the image reference or its credentials are wrong; a retry cannot help")
        return Shaped(action)
    if action == catalog.MORE_MEMORY:
        change = plan_resource_raise(
            spec,
            failure.container,
            "memory",
            settings.remediation_memory_factor,
            settings.remediation_memory_cap,
        )
        return Shaped(action, change.as_parameters(), resource_change=change)
    if action == catalog.MORE_STORAGE:
        change = plan_resource_raise(
            spec,
            failure.container,
            "ephemeral-storage",
            settings.remediation_storage_factor,
            settings.remediation_storage_cap,
        )
        return Shaped(action, change.as_parameters(), resource_change=change)
    if action == catalog.LONGER_DEADLINE:
        deadline = plan_deadline_raise(
            failure.job,
            settings.remediation_deadline_factor,
            settings.remediation_deadline_cap_seconds,
        )
        return Shaped(action, deadline, deadline_change=deadline)
    if action in (catalog.CREATE_DIRECTORY, catalog.CLEAR_CACHE):
        return _shape_claim_action(failure, action)
    raise PlanError(f"{action} is not a catalog action")


def ranked_candidates(failure: Failure) -> tuple[list[str], list[str]]:
    """Allowed actions (what worked before first, then the AI's pick) and notes on ignored picks."""
    allowed = list(catalog.allowed_actions(failure.category))
    notes: list[str] = []
    order: list[str] = []
    for source, pick in (("past incidents", failure.preferred), ("the AI", failure.suggestion)):
        if not pick:
            continue
        if pick in allowed:
            if pick not in order:
                order.append(pick)
        elif pick != catalog.NONE:
            shown = pick if catalog.is_catalog_action(pick) else "an action outside the catalog"
            notes.append(
                f"ignored {shown} suggested by {source}: not allowed for {failure.category}"
            )
    order.extend(a for a in allowed if a not in order)
    return order, notes


def choose(failure: Failure, settings: Settings, attempts_done: int) -> tuple[Shaped, list[str]]:
    """The first ranked action that can be shaped, else `none` with the reasons; plus notes."""
    order, notes = ranked_candidates(failure)
    for action in order:
        try:
            return shape(failure, action, settings, attempts_done), notes
        except (PlanError, PathRefused) as exc:
            notes.append(f"{action}: {exc}")
    if not order:
        notes.append(f"no automatic action is allowed for {failure.category}")
    return Shaped(catalog.NONE, reason="; ".join(notes)), notes
