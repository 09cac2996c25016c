"""One incident's failure as remediation sees it: status, the Job to copy, past incidents."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import kube
from ..runtime import Runtime
from . import history, records
from .naming import lineage, retry_job_name
from .reporting import key_of
from .shaping import Failure
from .state import state_of

log = logging.getLogger(__name__)


async def past_incidents(rt: Runtime, ns: str) -> list[Mapping[str, Any]]:
    from ..flow import past_recoveries  # kopf's index: no O(n) LIST per incident (performance)

    indexed = past_recoveries(rt, ns)
    if indexed is not None:
        return list(indexed)
    try:
        return [dict(o) for o in await rt.kube.list_recoveries(ns)]
    except kube.KubeError as exc:
        log.info("past incidents of %s unavailable: %s", ns, exc)
        return []


async def _base_job(
    rt: Runtime, ns: str, rec: Mapping[str, Any], root: str, done: int
) -> dict[str, Any] | None:
    """The Job to copy: the latest retry (its raised limits carry on), else the failed target."""
    target = (rec.get("spec") or {}).get("target") or {}
    names = [retry_job_name(root, done)] if done else []
    names.append(str(target.get("name", "")))
    for job_name in names:
        with contextlib.suppress(kube.NotFound):
            return dict(await rt.kube.get_job(ns, job_name))
    return None


@dataclass
class Context:
    """What planning needs, read fresh from the cluster for one incident."""

    failure: Failure
    root: str
    root_uid: str
    done: int
    past: list[Mapping[str, Any]]
    cases: list[dict[str, Any]]


async def context(rt: Runtime, rec: Mapping[str, Any], done: int | None = None) -> Context:
    """The failure as remediation sees it: status, the Job to copy, and past incidents."""
    ns, name = key_of(rec)
    status, spec = rec.get("status") or {}, rec.get("spec") or {}
    target = spec.get("target") or {}
    target_job = None
    if target.get("kind") == "Job" and target.get("name"):
        with contextlib.suppress(kube.NotFound):
            target_job = dict(await rt.kube.get_job(ns, str(target["name"])))
    stub = {"metadata": {"name": target.get("name", ""), "uid": target.get("uid", "")}}
    root, root_uid, label_attempts = lineage(target_job or stub)
    done = records.attempts_done(status, label_attempts) if done is None else done
    base = await _base_job(rt, ns, rec, root, done) if target_job is not None else None
    # Past incidents are read once per incident (similar cases) and once per namespace (the
    # ledger after a restart); later steps use what status kept, so a storm stays O(n).
    need_past = "similarCases" not in status or ns not in state_of(rt).seeded
    past = await past_incidents(rt, ns) if need_past else []
    fingerprint = str((status.get("analysis") or {}).get("fingerprint") or "")
    category = str(status.get("category") or "unknown")
    cases = (
        history.similar_cases(
            past, name=name, fingerprint=fingerprint, category=category, target=root
        )
        if need_past
        else [dict(c) for c in status.get("similarCases") or ()]
    )
    evidence = status.get("evidence") or {}
    failure = Failure(
        namespace=ns,
        recovery=name,
        recovery_uid=str((rec.get("metadata") or {}).get("uid", "")),
        category=category,
        fingerprint=fingerprint,
        solution=str(status.get("solution") or ""),
        evidence_text=str(evidence.get("text") or ""),
        container=evidence.get("container"),
        job=base,
        suggestion=(status.get("analysis") or {}).get("suggestedAction"),
        preferred=history.preferred_action(cases, fingerprint),
    )
    return Context(failure, root, root_uid, done, past, cases)
