"""Outcome of the Jobs remediation created: Recovered, the next step, or the end of the road."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .. import event_reasons, kube, metrics
from ..redaction import redact
from ..runtime import Logger, Runtime
from . import records
from .executor import plan_and_apply
from .launch import create_named
from .ledger import Start
from .naming import LABEL_RECOVERY, job_condition, labels_of, lineage, retry_job_name
from .reporting import event, key_of, write_status
from .state import state_of


async def on_job_event(
    rt: Runtime, job: Mapping[str, Any], event_type: str | None, logger: Logger
) -> None:
    """A watch event of a Job we created; acts once, when it has finished."""
    recovery = labels_of(job).get(LABEL_RECOVERY)
    if event_type == "DELETED" or not recovery or job_condition(job) is None:
        return
    ns = str((job.get("metadata") or {}).get("namespace", ""))
    async with state_of(rt).lock(f"{ns}/{recovery}"):
        try:
            rec = dict(await rt.kube.get_recovery(ns, recovery))
        except kube.NotFound:
            return
        await job_finished(rt, rec, job, logger)


async def job_finished(
    rt: Runtime, rec: dict[str, Any], job: Mapping[str, Any], logger: Logger
) -> None:
    """Record a finished Job once: only the Job status says is running moves anything (replays of
    the same event, or of older Jobs, find a different state and do nothing)."""
    condition = job_condition(job)
    status = rec.get("status") or {}
    rem = dict(status.get("remediation") or {})
    job_name = str((job.get("metadata") or {}).get("name", ""))
    if condition is None or rem.get("jobName") != job_name or rem.get("result") != records.RUNNING:
        return
    if status.get("phase") in records.TERMINAL_PHASES:
        return
    now = time.time()
    action, attempt = str(rem.get("action", "")), int(rem.get("attempts") or 0)
    ok = condition == "Complete"
    reason = _failure_reason(job)
    entry = {
        **records.entry_for(records.history_of(status), job_name),
        "finishedAt": records.iso(now),
        "result": records.SUCCEEDED if ok else records.FAILED,
        "message": f"Job {job_name} {'completed' if ok else 'failed: ' + reason}"[:1000],
    }
    hist = records.with_entry(records.history_of(status), entry)
    root = lineage(job)[0]
    is_retry = job_name == retry_job_name(root, attempt) and not records.is_claim_job(job)
    if ok and not is_retry:
        # Our own Job did its part; the same action goes on with the retry of the failed Job.
        retry_name = retry_job_name(_root_of(rec), attempt)
        fingerprint = str((status.get("analysis") or {}).get("fingerprint") or "")
        # The follow-up Job counts against the namespace's rate limit like any other.
        state_of(rt).ledger.record(Start(now, key_of(rec)[0], key_of(rec)[1], _root_of(rec),
                                         fingerprint))
        nxt = {
            "action": action,
            "attempt": attempt,
            "jobName": retry_name,
            "startedAt": records.iso(now),
            "result": records.STARTING,
            "parameters": entry.get("parameters") or {},
        }
        updated = await write_status(
            rt,
            rec,
            {
                "remediation": {
                    **rem,
                    "jobName": retry_name,
                    "result": records.STARTING,
                    "message": f"{job_name} completed; retrying the failed Job",
                    "history": records.with_entry(hist, nxt),
                }
            },
        )
        await event(rt, rec, event_reasons.REMEDIATION_SUCCEEDED, f"Job {job_name} completed")
        await create_named(rt, updated, logger)
        return
    metrics.REMEDIATIONS.labels(action=action, result="succeeded" if ok else "failed").inc()
    if ok:
        detected = records.epoch(status.get("detectedAt"), now)
        seconds = max(0.0, now - detected)
        msg = (
            f"{action} worked: Job {job_name} completed ({seconds:.0f}s after the failure was seen)"
        )
        await write_status(
            rt,
            rec,
            {
                "phase": "Recovered",
                "message": msg,
                "remediation": {
                    **rem,
                    "result": records.SUCCEEDED,
                    "finishedAt": records.iso(now),
                    "message": msg,
                    "history": hist,
                },
            },
        )
        metrics.RECOVERIES.labels(result="recovered").inc()
        metrics.RECOVERY_DURATION.observe(seconds)
        await event(rt, rec, event_reasons.RECOVERED, msg)
        logger.info("%s recovered by %s", key_of(rec)[1], action)
        return
    msg = f"attempt {attempt} ({action}) failed: Job {job_name}: {reason}"
    await event(rt, rec, event_reasons.REMEDIATION_FAILED, msg)
    patch: dict[str, Any] = {
        "remediation": {
            **rem,
            "result": records.FAILED,
            "finishedAt": records.iso(now),
            "message": msg,
            "history": hist,
        },
        "message": msg[:1000],
    }
    if is_retry:
        patch.update(await _reclassify(rt, rec, job, logger))
    else:
        patch["phase"] = "RemediationFailed"
        metrics.RECOVERIES.labels(result="failed").inc()
    updated = await write_status(rt, rec, patch)
    if is_retry:
        await plan_and_apply(rt, updated, logger)


def _root_of(rec: Mapping[str, Any]) -> str:
    target = (rec.get("spec") or {}).get("target") or {}
    return str(target.get("name", ""))


def _failure_reason(job: Mapping[str, Any]) -> str:
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return str(cond.get("message") or cond.get("reason") or "Failed")[:500]
    return "Failed"


async def _reclassify(
    rt: Runtime, rec: Mapping[str, Any], job: Mapping[str, Any], logger: Logger
) -> dict[str, Any]:
    """The retried Job failed: diagnose its own failure, which decides the next step."""
    from .. import status as st
    from ..collect import collect_target

    ns = key_of(rec)[0]
    meta = job.get("metadata") or {}
    s = rt.settings
    try:
        collected = await collect_target(
            rt.kube,
            rt.classifier,
            ns,
            "Job",
            str(meta.get("name")),
            meta.get("uid"),
            limit_bytes=s.log_limit_bytes,
            tail_lines=s.log_tail_lines,
        )
        diag = rt.classifier.diagnose(
            collected.scans, status=collected.status_object, events=collected.events
        )
    except Exception as exc:  # the next step plans from the old diagnosis, which is still true
        logger.warning("diagnosing the failed retry %s: %s", meta.get("name"), exc)
        return {}
    evidence = st.evidence_status(diag.evidence, collected.primary_pod, redact)
    out = st.diagnosis_status(diag, evidence, redact)
    analysis = dict((rec.get("status") or {}).get("analysis") or {})
    analysis["fingerprint"] = diag.fingerprint[:128]
    out["analysis"] = analysis
    return out
