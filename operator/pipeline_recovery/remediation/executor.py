"""The remediation step the operator runs after a diagnosis: plan, guard, start a Job or settle."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import event_reasons, kube, metrics
from ..runtime import Logger, Runtime
from . import catalog, history, records
from .context import Context, context
from .launch import create_named, schedule
from .ledger import Start
from .paths import PathRefused
from .planner import first_job, plan_remediation
from .policy import Decision
from .reporting import event, key_of, write_status
from .resources import PlanError
from .state import seed, state_of


async def advance(rt: Runtime, recovery: Mapping[str, Any], logger: Logger) -> None:
    """Take the next remediation step for a diagnosed PipelineRecovery (idempotent)."""
    ns, name = key_of(recovery)
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
            await write_status(rt, fresh, {"phase": "ManualActionRequired", "message": msg})


async def _advance(rt: Runtime, rec: dict[str, Any], logger: Logger) -> None:
    from .outcome import job_finished  # the outcome step calls back into this module

    status = rec.get("status") or {}
    if status.get("phase") in records.TERMINAL_PHASES or not status.get("category"):
        return
    rem = status.get("remediation") or {}
    ns, _ = key_of(rec)
    if rem.get("result") == records.STARTING and rem.get("jobName"):
        # The intent was recorded before a crash: finish it (a 409 means it was done).
        await create_named(rt, rec, logger)
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


async def plan_and_apply(rt: Runtime, rec: dict[str, Any], logger: Logger) -> None:
    """Plan from the fresh status, then apply the decision (write status, maybe create a Job)."""
    st, s = state_of(rt), rt.settings
    ns, name = key_of(rec)
    status = rec.get("status") or {}
    ctx = await context(rt, rec)
    failure = ctx.failure
    seed(st, ns, ctx.past)
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
        others = [o for o in ctx.past if key_of(o)[1] != name]
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
        await write_status(
            rt,
            rec,
            {**extra, "phase": "Remediating", "remediation": base, "message": decision.message},
        )
        schedule(rt, rec, decision.wait_seconds, logger)
        return
    if kind == "off":
        if rem.get("result") != records.OFF or extra:
            base["result"] = records.OFF
            await write_status(rt, rec, {**extra, "remediation": base})
        return
    if kind == "await-approval":
        if status.get("phase") != "AwaitingApproval" or extra:
            base["result"] = records.AWAITING
            await write_status(
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
    await write_status(
        rt, rec, {**extra, "phase": phase, "remediation": base, "message": message[:1000]}
    )
    metrics.RECOVERIES.labels(result=result).inc()
    await event(rt, rec, reason, message)
    logger.info("remediation of %s ended: %s", key_of(rec)[1], message)


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
    updated = await write_status(
        rt, rec, {**extra, "phase": "Remediating", "remediation": rem, "message": decision.message}
    )
    await create_named(rt, updated, logger, job)
