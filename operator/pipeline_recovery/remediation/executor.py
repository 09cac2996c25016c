"""The remediation step the operator runs after a diagnosis: plan, guard, create Jobs, record."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import event_reasons, kube, metrics
from ..runtime import Logger, Runtime
from . import catalog, history, records
from .jobs import PlanError, lineage, retry_job_name
from .ledger import Start, StartLedger
from .paths import PathRefused
from .planner import first_job, plan_remediation, retry_job
from .policy import Decision
from .shaping import Failure, shape

log = logging.getLogger(__name__)
UNAVAILABLE_RETRY_SECONDS = 5.0


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


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


async def advance(rt: Runtime, recovery: Mapping[str, Any], logger: Logger) -> None:
    """Take the next remediation step for a diagnosed PipelineRecovery (idempotent)."""
    ns, name = _key(recovery)
    async with state_of(rt).lock(f"{ns}/{name}"):
        try:
            fresh = dict(await rt.kube.get_recovery(ns, name))
        except kube.NotFound:
            return
        try:
            await _advance(rt, fresh, logger)
        except (PlanError, PathRefused) as exc:  # bad input: say so, keep the operator going
            msg = f"remediation refused: {exc}"[:1000]
            logger.warning("%s: %s", name, msg)
            await _write(rt, fresh, {"phase": "ManualActionRequired", "message": msg})


async def _advance(rt: Runtime, rec: dict[str, Any], logger: Logger) -> None:
    from .outcome import job_finished  # the outcome step calls back into this module

    status = rec.get("status") or {}
    if status.get("phase") in records.TERMINAL_PHASES or not status.get("category"):
        return
    rem = status.get("remediation") or {}
    ns, _ = _key(rec)
    if rem.get("result") == records.STARTING and rem.get("jobName"):
        await create_named(
            rt, rec, logger
        )  # intent recorded before a crash: finish it (409 = done)
        return
    if rem.get("result") == records.RUNNING and rem.get("jobName"):
        try:
            job = dict(await rt.kube.get_job(ns, str(rem["jobName"])))
        except kube.NotFound:
            job = {
                "metadata": {"name": rem["jobName"]},
                "status": {
                    "conditions": [
                        {"type": "Failed", "status": "True", "message": "the Job disappeared"}
                    ]
                },
            }
        await job_finished(rt, rec, job, logger)  # no-op while it is still running
        return
    await plan_and_apply(rt, rec, logger)


async def _past(rt: Runtime, ns: str) -> list[Mapping[str, Any]]:
    try:
        return [dict(o) for o in await rt.kube.list_recoveries(ns)]
    except kube.KubeError as exc:
        log.info("past incidents of %s unavailable: %s", ns, exc)
        return []


def _seed(st: State, ns: str, past: list[Mapping[str, Any]]) -> None:
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
    ns, name = _key(rec)
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
    past = await _past(rt, ns) if need_past else []
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


async def plan_and_apply(rt: Runtime, rec: dict[str, Any], logger: Logger) -> None:
    """Plan from the fresh status, then apply the decision (write status, maybe create a Job)."""
    st, s = state_of(rt), rt.settings
    ns, name = _key(rec)
    status = rec.get("status") or {}
    ctx = await context(rt, rec)
    failure = ctx.failure
    _seed(st, ns, ctx.past)
    now = time.time()
    st.ledger.prune(now)
    decision = plan_remediation(
        failure,
        settings=s,
        spec=rec.get("spec") or {},
        attempts_done=ctx.done,
        failed_at=records.last_finished_at(status, now),
        now=now,
        ledger=st.ledger,
        target=ctx.root,
    )
    extra: dict[str, Any] = {}
    if "similarCases" not in status:
        others = [o for o in ctx.past if _key(o)[1] != name]
        llm = status.get("estimatedRecoveryMinutes")
        extra = {
            "similarCases": ctx.cases,
            "estimatedRecoveryMinutes": history.estimate_recovery_minutes(
                others,
                fingerprint=failure.fingerprint,
                category=failure.category,
                llm_estimate=float(llm) if isinstance(llm, (int, float)) else None,
            ),
        }
    if decision.kind == "run":
        st.ledger.record(Start(now, ns, name, ctx.root, failure.fingerprint))  # no await between
        await _start(rt, rec, decision, ctx, now, extra, logger)
    else:
        await _settle(rt, rec, decision, extra, logger)


async def _write(rt: Runtime, rec: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    ns, name = _key(rec)
    updated: dict[str, Any] = dict(await rt.kube.patch_recovery_status(ns, name, patch))
    rt.track_phase(
        str((rec.get("metadata") or {}).get("uid", "")),
        str((updated.get("status") or {}).get("phase") or "Pending"),
    )
    return updated


async def event(rt: Runtime, rec: Mapping[str, Any], reason: str, message: str) -> None:
    from ..flow import post_event  # flow imports the hooks that import this module

    await post_event(rt, rec, reason, message, None)


def _refused_action(category: str) -> str:
    allowed = catalog.allowed_actions(category)
    return allowed[0] if allowed else catalog.NONE


async def _settle(
    rt: Runtime,
    rec: dict[str, Any],
    decision: Decision,
    extra: dict[str, Any],
    logger: Logger,
) -> None:
    """Every decision that creates no Job: status, events and end-of-incident metrics."""
    status = rec.get("status") or {}
    rem = dict(status.get("remediation") or {})
    plan = records.plan_of(decision)
    base = {
        **rem,
        "action": decision.shaped.action,
        "plan": plan,
        "message": decision.message,
        "attempts": records.attempts_done(status, 0),
        "nextAttemptAt": None,
    }
    kind, now = decision.kind, time.time()
    if kind == "wait":
        base.update(result=records.WAITING, nextAttemptAt=records.iso(now + decision.wait_seconds))
        await _write(
            rt,
            rec,
            {**extra, "phase": "Remediating", "remediation": base, "message": decision.message},
        )
        schedule(rt, rec, decision.wait_seconds, logger)
        return
    if kind == "off":
        if rem.get("result") != records.OFF or extra:
            base["result"] = records.OFF
            await _write(rt, rec, {**extra, "remediation": base})
        return
    if kind == "await-approval":
        if status.get("phase") != "AwaitingApproval" or extra:
            base["result"] = records.AWAITING
            await _write(
                rt,
                rec,
                {
                    **extra,
                    "phase": "AwaitingApproval",
                    "remediation": base,
                    "message": decision.message,
                },
            )
            await event(
                rt,
                rec,
                event_reasons.AWAITING_APPROVAL,
                f"planned {decision.shaped.action}; approve with spec.remediation.approved=true",
            )
        return
    if kind == "manual":
        phase, reason, result = (
            "ManualActionRequired",
            event_reasons.MANUAL_ACTION_REQUIRED,
            "manual",
        )
        base["result"] = records.REFUSED
        solution = str(status.get("solution") or "")
        message = f"{solution} ({decision.message})" if solution else decision.message
        if catalog.allowed_actions(str(status.get("category"))) and not rem.get("history"):
            metrics.REMEDIATIONS.labels(
                action=_refused_action(str(status.get("category"))), result="refused"
            ).inc()
    else:
        phase, reason, result = "RemediationFailed", event_reasons.REMEDIATION_FAILED, "failed"
        base["result"] = records.EXHAUSTED
        message = decision.message
    base["finishedAt"] = base.get("finishedAt") or records.iso(now)
    await _write(rt, rec, {**extra, "phase": phase, "remediation": base, "message": message[:1000]})
    metrics.RECOVERIES.labels(result=result).inc()
    await event(rt, rec, reason, message)
    logger.info("remediation of %s ended: %s", _key(rec)[1], message)


async def _start(
    rt: Runtime,
    rec: dict[str, Any],
    decision: Decision,
    ctx: Context,
    now: float,
    extra: dict[str, Any],
    logger: Logger,
) -> None:
    """Record the intent (action, attempt, Job name) in status, then create the Job."""
    shaped = decision.shaped
    job = first_job(decision, ctx.failure, rt.settings, root_name=ctx.root, root_uid=ctx.root_uid)
    job_name = str(job["metadata"]["name"])
    entry = {
        "action": shaped.action,
        "attempt": decision.attempt,
        "jobName": job_name,
        "startedAt": records.iso(now),
        "result": records.STARTING,
        "parameters": records.plan_of(decision)["parameters"],
    }
    status = rec.get("status") or {}
    rem = {
        "action": shaped.action,
        "attempts": decision.attempt,
        "jobName": job_name,
        "startedAt": records.iso(now),
        "finishedAt": None,
        "result": records.STARTING,
        "message": decision.message,
        "nextAttemptAt": None,
        "plan": records.plan_of(decision),
        "history": records.with_entry(records.history_of(status), entry),
    }
    updated = await _write(
        rt, rec, {**extra, "phase": "Remediating", "remediation": rem, "message": decision.message}
    )
    await create_named(rt, updated, logger, job)


async def create_named(
    rt: Runtime,
    rec: Mapping[str, Any],
    logger: Logger,
    job: Mapping[str, Any] | None = None,
) -> None:
    """Create the Job status names (rebuilt when not given); 409 means it already exists."""
    ns = _key(rec)[0]
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
        await _write(
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
    await _write(rt, rec, {"remediation": {**rem, "result": records.RUNNING, "history": hist}})
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
    ns, name = _key(rec)
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
