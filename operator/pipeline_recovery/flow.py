"""The incident flow: watch event → PipelineRecovery → collect → classify → analyse → report →
remediate. Resumable: every step starts from what status already says."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Mapping
from typing import Any

from pipeline_recovery import (
    event_reasons,
    hooks,
    incidents,
    kube,
    logging_setup,
    metrics,
    stage_clock,
)
from pipeline_recovery import status as st
from pipeline_recovery.collect import Collected, collect_inline, collect_target
from pipeline_recovery.labels import API_VERSION, EVENT_COMPONENT, KIND
from pipeline_recovery.redaction import redact
from pipeline_recovery.runtime import Logger, Runtime

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The API server stayed unavailable through the client's retries; try the step again."""

    def __init__(self, message: str, delay: float = 5.0) -> None:
        super().__init__(message)
        self.delay = delay


# -- watched workloads ----------------------------------------------------------------------------
async def on_workload_event(rt: Runtime, kind: str, body: Mapping[str, Any],
                            event_type: str | None, logger: Logger) -> None:
    """Any watch event of a Job or Pod; never writes to it."""
    if event_type == "DELETED":
        rt.known_targets.discard(str((body.get("metadata") or {}).get("uid") or ""))
        return
    if incidents.is_ours(body):
        if kind == "Job":
            await hooks.on_owned_job(rt, body, event_type, logger)
        return
    if not rt.watch_selector.matches((body.get("metadata") or {}).get("labels") or {}):
        return
    s = rt.settings
    if kind == "Job":
        incident = incidents.for_job(body, s.opt_out_label)
    else:
        verdict = incidents.for_pod(body, s.opt_out_label, s.pod_grace_seconds)
        incident = verdict.incident
        if verdict.recheck_in is not None:
            _schedule_recheck(rt, body, verdict.recheck_in, logger)
    if incident is not None:
        stage_clock.mark(f"{incident.namespace}/{incident.name}", "event_seen")
        await ensure_recovery(rt, incident, logger)


# Only an optimisation (a 409 on create is the real guard), so forgetting is always safe.
_KNOWN_TARGETS_MAX = 50_000


def _remember(rt: Runtime, key: str) -> None:
    if len(rt.known_targets) >= _KNOWN_TARGETS_MAX:
        rt.known_targets.clear()
    rt.known_targets.add(key)


async def ensure_recovery(rt: Runtime, incident: incidents.Incident,
                          logger: Logger) -> bool:
    """Create the incident's PipelineRecovery unless it exists; True if this call created it."""
    key = incident.uid or f"{incident.namespace}/{incident.kind}/{incident.name}"
    if key in rt.known_targets:
        return False
    try:
        await rt.kube.create_recovery(incident.namespace, incidents.recovery_body(incident))
    except kube.Conflict:
        _remember(rt, key)
        return False
    except kube.Unavailable as exc:
        raise RetryLater(str(exc)) from exc
    _remember(rt, key)
    stage_clock.mark(f"{incident.namespace}/{incident.name}", "recovery_created")
    logger.info("%s %s failed (%s): created PipelineRecovery %s", incident.kind, incident.name,
                incident.reason, incident.recovery_name)
    return True


def _schedule_recheck(rt: Runtime, pod: Mapping[str, Any], delay: float,
                      logger: Logger) -> None:
    """A pod stuck waiting within its grace period may get no further events: look again later."""
    meta = pod.get("metadata") or {}
    uid = str(meta.get("uid", ""))
    if uid in rt.rechecks:
        return

    async def recheck() -> None:
        try:
            await asyncio.sleep(delay + 0.05)
            fresh = await rt.kube.get_pod(str(meta.get("namespace")), str(meta.get("name")))
            await on_workload_event(rt, "Pod", fresh, "MODIFIED", logger)
        except kube.KubeError as exc:
            logger.info("re-check of pod %s skipped: %s", meta.get("name"), exc)
        finally:
            rt.rechecks.pop(uid, None)

    rt.rechecks[uid] = asyncio.get_running_loop().create_task(recheck())


# -- PipelineRecovery ---------------------------------------------------------------------------
def index_entry(body: Mapping[str, Any]) -> dict[str, Any]:
    """One PipelineRecovery in the in-memory index, by namespace: what past-incident readers
    use (spec, status, identity), without kopf's annotations or managed fields."""
    meta = body.get("metadata") or {}
    slim = {k: meta[k] for k in ("name", "namespace", "uid", "creationTimestamp", "labels")
            if k in meta}
    return {str(meta.get("namespace")): {
        "apiVersion": API_VERSION, "kind": KIND, "metadata": copy.deepcopy(slim),
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
        "status": copy.deepcopy(dict(body.get("status") or {}))}}


def past_recoveries(rt: Runtime, namespace: str) -> list[dict[str, Any]] | None:
    """Every PipelineRecovery of the namespace from kopf's index (read-only copies: the index
    keeps its own); None when there is no index (then read them from the API)."""
    index = rt.recovery_index
    if index is None:
        return None
    return [dict(o) for o in index.get(namespace, ())]


def on_recovery_event(rt: Runtime, body: Mapping[str, Any], event_type: str | None) -> None:
    uid = str((body.get("metadata") or {}).get("uid", ""))
    phase = (body.get("status") or {}).get("phase")
    rt.track_phase(uid, None if event_type == "DELETED" else str(phase or "Pending"))


async def process_recovery(rt: Runtime, body: Mapping[str, Any], logger: Logger) -> None:
    """Create, resume and spec change: diagnose unless status already holds a diagnosis for this
    generation, then hand over to the remediation step."""
    status = body.get("status") or {}
    meta = body.get("metadata") or {}
    phase = status.get("phase")
    generation = int(meta.get("generation") or 1)
    # Every log line of this handler's task carries the incident (JSON logs: name, category).
    logging_setup.bind_incident(meta.get("name"), namespace=meta.get("namespace"),
                                category=status.get("category"))
    rediagnose = phase == "Error" and int(status.get("observedGeneration") or 0) < generation
    if phase in st.DIAGNOSED_PHASES or (phase == "Error" and not rediagnose):
        if phase in st.DIAGNOSED_PHASES:
            await hooks.remediate(rt, body, logger)
        return
    try:
        updated = await diagnose(rt, body, logger)
    except kube.Unavailable as exc:
        raise RetryLater(f"API server unavailable: {exc}") from exc
    if updated is not None and (updated.get("status") or {}).get("phase") in st.DIAGNOSED_PHASES:
        await hooks.remediate(rt, updated, logger)


async def _write(rt: Runtime, body: Mapping[str, Any], patch: Mapping[str, Any]
                 ) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    updated = await rt.kube.patch_recovery_status(str(meta.get("namespace")),
                                                  str(meta.get("name")), patch)
    result = dict(updated)
    rt.track_phase(str(meta.get("uid", "")), str(patch.get("phase") or "Pending"))
    return result


async def diagnose(rt: Runtime, body: Mapping[str, Any], logger: Logger
                   ) -> dict[str, Any] | None:
    started = time.monotonic()
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    ns, gen = str(meta.get("namespace")), int(meta.get("generation") or 1)
    target, inline = spec.get("target") or {}, spec.get("log") or {}
    clock_key = f"{ns}/{target.get('name') or meta.get('name')}"
    stage_clock.mark(clock_key, "handler_started")
    what = f"{target.get('kind')} {target.get('name')}" if target else "inline log"
    current = dict(body.get("status") or {})
    written = await _write(rt, body, st.phase_status(
        "Collecting", f"collecting logs and events of {what}", gen, current,
        [st.condition("Diagnosed", None, "Collecting", f"collecting evidence of {what}", gen)]))
    body = {**body, "status": written.get("status", {})}

    s = rt.settings
    try:
        if target:
            collected = await collect_target(
                rt.kube, rt.classifier, ns, str(target.get("kind")), str(target.get("name")),
                target.get("uid"), limit_bytes=s.log_limit_bytes, tail_lines=s.log_tail_lines)
        else:
            collected = collect_inline(rt.classifier, str(inline.get("text", "")),
                                       inline.get("container"), s.inline_log_max_bytes)
    except kube.Unavailable:
        raise
    except Exception as exc:  # bad input or a bug: explain in status, keep the operator going
        logger.exception("collecting evidence of %s failed", what)
        return await _fail(rt, body, f"collecting evidence of {what} failed: {exc}",
                           "CollectFailed")
    stage_clock.mark(clock_key, "collected")

    body = {**body, "status": (await _write(rt, body, {"phase": "Diagnosing",
                                                       "observedGeneration": gen}))["status"]}
    if not collected.target_found and not collected.events and not collected.scans:
        return await _fail(rt, body, f"{collected.target_error}; nothing left to diagnose",
                           "TargetNotFound", collected)
    try:
        diag = rt.classifier.diagnose(collected.scans, status=collected.status_object,
                                      events=collected.events)
        result = await hooks.analyse(rt, body, diag, collected.scans,
                                     collected.k8s_evidence_lines(), logger)
    except Exception as exc:
        logger.exception("diagnosing %s failed", what)
        return await _fail(rt, body, f"diagnosing {what} failed: {exc}", "DiagnosisFailed")
    stage_clock.mark(clock_key, "classified")

    diag = result.diagnosis
    logging_setup.bind_incident(category=diag.category)
    pod = collected.primary_pod
    evidence = st.evidence_status(diag.evidence, pod, redact)
    if not target and evidence.get("source") == "log":
        evidence["source"] = "inline"  # the log came with the resource, not from a pod
    patch: dict[str, Any] = {
        **st.phase_status("Diagnosed", f"{diag.category}: {redact(diag.root_cause)}", gen,
                          body.get("status") or {}, _conditions(collected, gen, diag.category)
                          + result.conditions),
        **st.diagnosis_status(diag, evidence, redact),
        "analysis": result.analysis,
        "collected": {"logs": [r.as_status() for r in collected.reads][:32],
                      "events": len(collected.events), "pods": len(collected.pods)},
        **result.status,
    }
    updated = await _write(rt, body, patch)
    stage_clock.mark(clock_key, "status_patched")
    first = body.get("status", {}).get("phase") not in st.DIAGNOSED_PHASES
    if first:
        kind = str(target.get("kind") or "Inline")
        metrics.FAILURES_DETECTED.labels(kind=kind, category=diag.category,
                                         severity=str(diag.severity)).inc()
        metrics.DIAGNOSES.labels(source=diag.source, category=diag.category).inc()
        metrics.DIAGNOSIS_DURATION.observe(time.monotonic() - started)
    message = (f"{what}: {diag.category} ({diag.severity}, confidence "
               f"{diag.confidence:.2f}): {redact(diag.root_cause)}")
    await post_event(rt, updated, event_reasons.DIAGNOSED, message, collected.target)
    for reason, msg in result.events:
        await post_event(rt, updated, reason, msg, None)
    logger.info("diagnosed %s as %s", what, diag.category)
    return updated


def _conditions(c: Collected, gen: int, category: str) -> list[dict[str, Any]]:
    out = [st.condition("Diagnosed", True, "Classified", f"root cause category {category}", gen)]
    if c.target is not None or not c.target_found:
        out.append(st.condition("TargetFound", c.target_found,
                                "Found" if c.target_found else "TargetNotFound",
                                c.target_error or "the failed object was read", gen))
    ok, reason, message = c.logs_state()
    out.append(st.condition("LogsAvailable", ok, reason, message, gen))
    return out


async def _fail(rt: Runtime, body: Mapping[str, Any], message: str, reason: str,
                collected: Collected | None = None) -> dict[str, Any]:
    gen = int((body.get("metadata") or {}).get("generation") or 1)
    conds = [st.condition("Diagnosed", False, reason, message, gen)]
    if collected is not None and not collected.target_found:
        conds.append(st.condition("TargetFound", False, "TargetNotFound",
                                  collected.target_error or message, gen))
    patch = st.phase_status("Error", message, gen, body.get("status") or {}, conds)
    updated = await _write(rt, body, patch)
    await post_event(rt, updated, event_reasons.DIAGNOSIS_FAILED, message, None)
    return updated


def _involved(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {"apiVersion": obj.get("apiVersion", api_version), "kind": obj.get("kind", kind),
            "name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion")}


async def post_event(rt: Runtime, recovery: Mapping[str, Any], reason: str, message: str,
                     target: Mapping[str, Any] | None) -> None:
    """A Kubernetes Event on the PipelineRecovery (and on the failed object when it exists).
    Events are best effort: a refusal is logged, never fatal."""
    ns = str((recovery.get("metadata") or {}).get("namespace"))
    objs = [_involved(recovery, API_VERSION, KIND)]
    if target is not None:
        objs.append(_involved(target, "batch/v1", "Job"))
    now = st.now_iso()
    for inv in objs:
        body = {
            "metadata": {"generateName": f"{inv['name']}.", "namespace": ns},
            "involvedObject": inv, "reason": reason, "message": st.clip(message, 1000),
            "type": event_reasons.event_type(reason), "count": 1,
            "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": EVENT_COMPONENT}, "reportingComponent": EVENT_COMPONENT,
        }
        try:
            await rt.kube.create_event(ns, body)
        except kube.KubeError as exc:
            log.warning("could not post event %s on %s: %s", reason, inv["name"], exc)
