"""Pure decisions on watched Jobs and Pods: is this a failure, whose incident is it, what name."""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pipeline_recovery import labels

STUCK_WAITING_REASONS = frozenset({
    "CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
    "InvalidImageName", "CreateContainerError",
})
TargetKind = Literal["Job", "Pod"]


@dataclass(frozen=True)
class Incident:
    """A failed target that deserves one PipelineRecovery."""

    kind: TargetKind
    namespace: str
    name: str
    uid: str
    reason: str  # short, e.g. "BackoffLimitExceeded", "OOMKilled", "ImagePullBackOff"

    @property
    def recovery_name(self) -> str:
        return recovery_name(self.kind, self.name, self.uid)


@dataclass(frozen=True)
class Verdict:
    """What to do with one watch event: raise `incident`, re-check after `recheck_in` seconds,
    or nothing (both None)."""

    incident: Incident | None = None
    recheck_in: float | None = None


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return _meta(obj).get("labels") or {}


def is_ours(obj: Mapping[str, Any]) -> bool:
    """Created by our remediation: its outcome goes to remediation, never a new incident."""
    return labels.INCIDENT_LABEL in _labels(obj)


def opted_out(obj: Mapping[str, Any], opt_out_label: str) -> bool:
    value = _labels(obj).get(opt_out_label)
    return value is not None and value.lower() not in {"false", "0", "no"}


def job_failure(job: Mapping[str, Any]) -> str | None:
    """The reason of the Job's Failed=True condition, or None if it has not failed."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            return str(cond.get("reason") or "Failed")
    return None


def job_succeeded(job: Mapping[str, Any]) -> bool:
    conds = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Complete" and c.get("status") == "True" for c in conds)


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_problem(pod: Mapping[str, Any], now: datetime.datetime, grace: float
                ) -> tuple[str | None, float | None]:
    """(reason, None) when the pod failed or is stuck past grace; (None, seconds) when it is stuck
    but still within grace; (None, None) when it is fine."""
    status = pod.get("status") or {}
    for cs in _statuses(pod):
        term = (cs.get("state") or {}).get("terminated") or {}
        if term.get("reason") == "OOMKilled":
            return "OOMKilled", None
    if status.get("phase") == "Failed":
        return str(status.get("reason") or "Failed"), None
    for cs in _statuses(pod):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in STUCK_WAITING_REASONS:
            since = parse_time(status.get("startTime")) or parse_time(
                _meta(pod).get("creationTimestamp"))
            age = (now - since).total_seconds() if since else grace
            if age >= grace:
                return str(reason), None
            return None, max(0.0, grace - age)
    return None, None


def owning_job(pod: Mapping[str, Any]) -> tuple[str, str] | None:
    """(name, uid) of the Job controlling this pod, if any."""
    for ref in _meta(pod).get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("controller", True):
            return str(ref.get("name")), str(ref.get("uid", ""))
    return None


def for_job(job: Mapping[str, Any], opt_out_label: str) -> Incident | None:
    if is_ours(job) or opted_out(job, opt_out_label):
        return None
    reason = job_failure(job)
    if reason is None:
        return None
    meta = _meta(job)
    return Incident("Job", str(meta.get("namespace", "")), str(meta.get("name", "")),
                    str(meta.get("uid", "")), reason)


def for_pod(pod: Mapping[str, Any], opt_out_label: str, grace: float,
            now: datetime.datetime | None = None) -> Verdict:
    """A bare pod's own incident, or its Job's incident when stuck waiting (the Job controller
    would never mark that Job failed); a Job's failed pod waits for the Job's Failed condition."""
    if is_ours(pod) or opted_out(pod, opt_out_label):
        return Verdict()
    now = now or datetime.datetime.now(datetime.UTC)
    reason, recheck = pod_problem(pod, now, grace)
    if reason is None:
        return Verdict(recheck_in=recheck)
    meta = _meta(pod)
    ns = str(meta.get("namespace", ""))
    owner = owning_job(pod)
    if owner is None:
        return Verdict(Incident("Pod", ns, str(meta.get("name", "")), str(meta.get("uid", "")),
                                reason))
    if reason in STUCK_WAITING_REASONS:
        return Verdict(Incident("Job", ns, owner[0], owner[1], reason))
    return Verdict()


_DNS = re.compile(r"[^a-z0-9-]+")


def recovery_name(kind: str, name: str, uid: str) -> str:
    """Deterministic, valid DNS-1123 subdomain name: `<kind>-<name…>-<8 hex of uid>`."""
    digest = hashlib.sha256(f"{kind}/{uid or name}".encode()).hexdigest()[:8]
    stem = _DNS.sub("-", name.lower()).strip("-")[:48].rstrip("-") or "target"
    return f"{kind.lower()}-{stem}-{digest}"


def recovery_body(incident: Incident, mode_labels: Mapping[str, str] | None = None
                  ) -> dict[str, Any]:
    """The PipelineRecovery the watch creates for an incident (status comes later)."""
    return {
        "apiVersion": labels.API_VERSION,
        "kind": labels.KIND,
        "metadata": {
            "name": incident.recovery_name,
            "namespace": incident.namespace,
            "labels": {labels.MANAGED_BY_LABEL: labels.MANAGED_BY,
                       labels.TARGET_KIND_LABEL: incident.kind.lower(), **(mode_labels or {})},
            "annotations": {f"{labels.GROUP}/detected-reason": incident.reason},
        },
        "spec": {"target": {"kind": incident.kind, "name": incident.name, "uid": incident.uid}},
    }
