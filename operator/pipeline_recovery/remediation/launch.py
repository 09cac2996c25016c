"""Creating the Job status names (once, even across restarts) and the timers that step again."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from .. import event_reasons, kube, metrics
from ..runtime import Logger, Runtime
from . import catalog, records
from .context import context
from .naming import lineage, retry_job_name
from .paths import PathRefused
from .planner import first_job, retry_job
from .policy import Decision
from .reporting import event, key_of, write_status
from .resources import PlanError
from .shaping import shape

log = logging.getLogger(__name__)
UNAVAILABLE_RETRY_SECONDS = 5.0


async def create_named(
    rt: Runtime,
    rec: Mapping[str, Any],
    logger: Logger,
    job: Mapping[str, Any] | None = None,
) -> None:
    """Create the Job status names (rebuilt when not given); 409 means it already exists."""
    ns = key_of(rec)[0]
    status = rec.get("status") or {}
    rem = dict(status.get("remediation") or {})
    job_name, action = str(rem["jobName"]), str(rem.get("action", ""))
    attempt = int(rem.get("attempts") or 0)
    if job is None:
        job = await rebuild(rt, rec, job_name, action, attempt)
    try:
        if job is None:
            raise kube.KubeError(0, "the Job can no longer be rebuilt (its source is gone)")
        await rt.kube.create_job(ns, job)
    except kube.Conflict:
        logger.info("Job %s already exists (created before a restart)", job_name)
    except kube.Unavailable as exc:
        logger.warning("creating Job %s: %s; will retry", job_name, exc)
        schedule(rt, rec, UNAVAILABLE_RETRY_SECONDS, logger)
        return
    except kube.KubeError as exc:
        msg = f"creating Job {job_name} failed: {exc.message or exc}"[:1000]
        entry = {
            **records.entry_for(records.history_of(status), job_name),
            "result": records.FAILED,
            "message": msg,
            "finishedAt": records.iso(time.time()),
        }
        hist = records.with_entry(records.history_of(status), entry)
        await write_status(
            rt,
            rec,
            {
                "phase": "RemediationFailed",
                "message": msg,
                "remediation": {
                    **rem,
                    "result": records.FAILED,
                    "message": msg,
                    "history": hist,
                    "finishedAt": entry["finishedAt"],
                },
            },
        )
        metrics.REMEDIATIONS.labels(action=action, result="failed").inc()
        metrics.RECOVERIES.labels(result="failed").inc()
        await event(rt, rec, event_reasons.REMEDIATION_FAILED, msg)
        return
    entry = {**records.entry_for(records.history_of(status), job_name), "result": records.RUNNING}
    hist = records.with_entry(records.history_of(status), entry)
    await write_status(
        rt, rec, {"remediation": {**rem, "result": records.RUNNING, "history": hist}}
    )
    # One action counts once: our own Job starts it; its follow-up retry is the same action.
    if job_name != retry_job_name(str(jobs_root(job)), attempt) or not (
        catalog.CATALOG[action].authors_job
    ):
        metrics.REMEDIATIONS.labels(action=action, result="started").inc()
    await event(
        rt,
        rec,
        event_reasons.REMEDIATION_STARTED,
        f"{action} (attempt {attempt}): created Job {job_name}",
    )


def jobs_root(job: Mapping[str, Any] | None) -> str:
    return lineage(job or {})[0]


async def rebuild(
    rt: Runtime, rec: Mapping[str, Any], job_name: str, action: str, attempt: int
) -> dict[str, Any] | None:
    """The Job status names, rebuilt from the same inputs (deterministic, so the same body)."""
    ctx = await context(rt, rec, done=max(0, attempt - 1))
    if ctx.failure.job is None or action not in catalog.CATALOG:
        return None
    try:
        shaped = shape(ctx.failure, action, rt.settings, ctx.done)
    except (PlanError, PathRefused) as exc:
        log.warning("cannot rebuild %s: %s", job_name, exc)
        return None
    decision = Decision("run", shaped, attempt, "rebuilt")
    if job_name == retry_job_name(ctx.root, attempt):
        return retry_job(decision, ctx.failure, root_name=ctx.root, root_uid=ctx.root_uid)
    return first_job(decision, ctx.failure, rt.settings, root_name=ctx.root, root_uid=ctx.root_uid)


def schedule(rt: Runtime, rec: Mapping[str, Any], delay: float, logger: Logger) -> None:
    """Run `advance` again after delay (backoff, cooldown, rate limit); one timer per incident.
    Timers live in rt.rechecks so that stopping the operator cancels them; status keeps the
    state, and the resume after a restart plans again."""
    from .executor import advance  # the executor creates Jobs through this module

    ns, name = key_of(rec)
    key = f"remediation:{ns}/{name}"
    old = rt.rechecks.get(key)
    if old is not None and not old.done() and old is not asyncio.current_task():
        old.cancel()

    async def later() -> None:
        try:
            await asyncio.sleep(max(0.0, delay) + 0.01)
            await advance(rt, rec, logger)
        except kube.KubeError as exc:
            logger.warning("remediation of %s deferred again: %s", name, exc)
            schedule(rt, rec, UNAVAILABLE_RETRY_SECONDS, logger)
        finally:
            if rt.rechecks.get(key) is asyncio.current_task():
                rt.rechecks.pop(key, None)

    rt.rechecks[key] = asyncio.get_running_loop().create_task(later())
