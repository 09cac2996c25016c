"""Pure builders of the Jobs remediation creates: retries of failed Jobs and our fixed-argv Jobs."""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..labels import API_VERSION, GROUP, INCIDENT_LABEL, KIND, MANAGED_BY_LABEL
from . import catalog
from .paths import MOUNT_ROOT, ClaimPath
from .quantities import QuantityError, parse_quantity, scale_bytes

# The incident label routes a failure of a Job we created back to its PipelineRecovery.
LABEL_RECOVERY: Final = INCIDENT_LABEL
LABEL_ORIGINAL_JOB: Final = f"{GROUP}/original-job"
LABEL_ATTEMPT: Final = f"{GROUP}/attempt"
LABEL_ACTION: Final = f"{GROUP}/action"
LABEL_ROLE: Final = f"{GROUP}/role"
ANNOTATION_ORIGINAL_UID: Final = f"{GROUP}/original-uid"
ANNOTATION_CHANGES: Final = f"{GROUP}/changes"
ROLE_RETRY: Final = "retry"
ROLE_REMEDIATION: Final = "remediation"
MANAGED_BY: Final = {MANAGED_BY_LABEL: "pipeline-recovery"}

# Fields the Job controller or the apiserver own; a copy carrying them would be rejected or adopted.
_CONTROLLER_LABELS: Final = (
    "controller-uid",
    "job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
)
_DROPPED_METADATA: Final = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "finalizers",
    "generateName",
)
_DROPPED_ANNOTATIONS: Final = (
    "kubectl.kubernetes.io/last-applied-configuration",
    "batch.kubernetes.io/job-tracking",
    "batch.kubernetes.io/cronjob-scheduled-timestamp",
)
NAME_MAX: Final = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NON_ROOT_UID: Final = 65532
REMEDIATION_RESOURCES: Final = {
    "requests": {"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "16Mi"},
    "limits": {"cpu": "200m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
}
TTL_AFTER_FINISHED: Final = 3600


class PlanError(ValueError):
    """The action cannot be shaped for this Job (no such container, already at the cap ...)."""


def bounded_name(base: str, suffix: str) -> str:
    """`<base><suffix>` as a DNS label of at most 63 chars; long bases are cut and hashed."""
    base = re.sub(r"[^a-z0-9-]", "-", base.lower()).strip("-") or "job"
    if len(base) + len(suffix) <= NAME_MAX:
        return base + suffix
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    keep = NAME_MAX - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-')}-{digest}{suffix}"


def retry_job_name(original: str, attempt: int) -> str:
    """The deterministic name of the attempt-th retry of an original Job (409 means it exists)."""
    return bounded_name(original, f"-retry-{attempt}")


def remediation_job_name(recovery: str, action: str, attempt: int) -> str:
    """The deterministic name of our own Job for an action of a PipelineRecovery."""
    short = {catalog.CREATE_DIRECTORY: "mkdir", catalog.CLEAR_CACHE: "clear-cache"}.get(
        action, action
    )
    return bounded_name(recovery, f"-{short}-{attempt}")


def is_dns_label(name: str) -> bool:
    return len(name) <= NAME_MAX and bool(_DNS_LABEL.match(name))


def _strip_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if k not in _CONTROLLER_LABELS}


def _containers(pod_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*(pod_spec.get("initContainers") or ()), *(pod_spec.get("containers") or ())]


def find_container(pod_spec: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """The named container (init containers included); the only one when name is unknown."""
    containers = _containers(pod_spec)
    if name:
        for container in containers:
            if container.get("name") == name:
                return container
        raise PlanError(f"container {name!r} is not in the Job's pod template")
    regular = list(pod_spec.get("containers") or ())
    if len(regular) == 1:
        return regular[0]  # type: ignore[no-any-return]
    raise PlanError("cannot tell which container failed")


@dataclass(frozen=True)
class ResourceChange:
    """Old and new values of one resource of one container (None: not set)."""

    container: str
    resource: str
    old_request: str | None
    new_request: str | None
    old_limit: str | None
    new_limit: str | None
    capped: bool

    def as_parameters(self) -> dict[str, str]:
        out = {"container": self.container, "resource": self.resource}
        for key, value in (
            ("oldRequest", self.old_request),
            ("newRequest", self.new_request),
            ("oldLimit", self.old_limit),
            ("newLimit", self.new_limit),
        ):
            if value is not None:
                out[key] = value
        return out


def plan_resource_raise(
    pod_spec: Mapping[str, Any], container: str | None, resource: str, factor: float, cap: str
) -> ResourceChange:
    """New request and limit of a resource raised by factor up to cap; PlanError if impossible."""
    spec = find_container(pod_spec, container)
    resources = spec.get("resources") or {}
    old_request = (resources.get("requests") or {}).get(resource)
    old_limit = (resources.get("limits") or {}).get(resource)
    if old_request is None and old_limit is None:
        raise PlanError(f"container {spec.get('name')!r} sets no {resource} to raise")
    try:
        ceiling = parse_quantity(cap)
        if (
            max(parse_quantity(str(q)) for q in (old_request, old_limit) if q is not None)
            >= ceiling
        ):
            raise PlanError(
                f"{resource} of container {spec.get('name')!r} is already at the cap {cap}"
            )
        new_request, capped_r = (
            scale_bytes(str(old_request), factor, cap) if old_request else (None, False)
        )
        new_limit, capped_l = (
            scale_bytes(str(old_limit), factor, cap) if old_limit else (None, False)
        )
    except QuantityError as exc:
        raise PlanError(f"{resource} of container {spec.get('name')!r}: {exc}") from None
    return ResourceChange(
        str(spec.get("name")),
        resource,
        None if old_request is None else str(old_request),
        new_request,
        None if old_limit is None else str(old_limit),
        new_limit,
        capped_r or capped_l,
    )


def plan_deadline_raise(job: Mapping[str, Any], factor: float, cap: int) -> dict[str, str]:
    """Longer activeDeadlineSeconds for the Job (or its pod template); PlanError if none/capped."""
    spec = job.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    for where, holder in (("job", spec), ("pod", pod_spec)):
        old = holder.get("activeDeadlineSeconds")
        if isinstance(old, int) and not isinstance(old, bool) and old > 0:
            new = min(cap, int(old * factor + 0.999999))
            if new <= old:
                raise PlanError(f"activeDeadlineSeconds {old} is already at the cap {cap}")
            return {"field": where, "oldSeconds": str(old), "newSeconds": str(new)}
    raise PlanError("the Job sets no activeDeadlineSeconds to raise")


def _apply_resource(pod_spec: dict[str, Any], change: ResourceChange) -> None:
    container = find_container(pod_spec, change.container)
    resources = container.setdefault("resources", {})
    if change.new_request is not None:
        resources.setdefault("requests", {})[change.resource] = change.new_request
    if change.new_limit is not None:
        resources.setdefault("limits", {})[change.resource] = change.new_limit


def build_retry_job(
    original: Mapping[str, Any],
    *,
    root_name: str,
    root_uid: str,
    recovery: str,
    attempt: int,
    action: str,
    resource_change: ResourceChange | None = None,
    deadline_change: Mapping[str, str] | None = None,
    extra_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A copy of the failed Job, cleaned of controller-owned fields, labelled as our retry."""
    meta = original.get("metadata") or {}
    spec = copy.deepcopy(dict(original.get("spec") or {}))
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    ours = {
        **MANAGED_BY,
        LABEL_RECOVERY: recovery,
        LABEL_ORIGINAL_JOB: root_name,
        LABEL_ATTEMPT: str(attempt),
        LABEL_ACTION: action,
        LABEL_ROLE: ROLE_RETRY,
        **(extra_labels or {}),
    }
    tmeta["labels"] = {**_strip_labels(tmeta.get("labels")), **ours}
    tmeta.pop("creationTimestamp", None)
    pod_spec = template.setdefault("spec", {})
    if resource_change is not None:
        _apply_resource(pod_spec, resource_change)
    if deadline_change is not None:
        holder = spec if deadline_change["field"] == "job" else pod_spec
        holder["activeDeadlineSeconds"] = int(deadline_change["newSeconds"])
    annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k not in _DROPPED_ANNOTATIONS
    }
    annotations[ANNOTATION_ORIGINAL_UID] = root_uid
    if resource_change is not None:
        annotations[ANNOTATION_CHANGES] = ",".join(
            f"{k}={v}" for k, v in resource_change.as_parameters().items()
        )
    new_meta: dict[str, Any] = {
        key: copy.deepcopy(value)
        for key, value in meta.items()
        if key not in _DROPPED_METADATA
        and key not in ("name", "labels", "annotations", "ownerReferences")
    }
    new_meta["name"] = retry_job_name(root_name, attempt)
    new_meta["labels"] = {**_strip_labels(meta.get("labels")), **ours}
    new_meta["annotations"] = annotations
    owners = [ref for ref in meta.get("ownerReferences") or () if not ref.get("controller")]
    if owners:
        new_meta["ownerReferences"] = copy.deepcopy(owners)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": new_meta, "spec": spec}


def _run_as(pod_spec: Mapping[str, Any]) -> tuple[int, int]:
    """The failed pod's own non-root identity (so files it owns stay writable), else a fixed one."""
    context = pod_spec.get("securityContext") or {}
    uid, gid = context.get("runAsUser"), context.get("runAsGroup")
    if isinstance(uid, int) and not isinstance(uid, bool) and uid > 0:
        return uid, gid if isinstance(gid, int) and not isinstance(gid, bool) and gid > 0 else uid
    return NON_ROOT_UID, NON_ROOT_UID


def claim_argv(action: str, target: ClaimPath) -> list[str]:
    """The fixed argv of an action on a validated path (never a shell, never log text as code)."""
    if action == catalog.CREATE_DIRECTORY:
        return ["mkdir", "-p", "--", target.in_job]
    if action == catalog.CLEAR_CACHE:
        if not target.relative:
            raise PlanError("refusing to clear the root of a claim")
        return ["find", target.in_job, "-xdev", "-mindepth", "1", "-delete"]
    raise PlanError(f"{action} runs no Job of its own")


def build_claim_job(
    action: str,
    target: ClaimPath,
    *,
    namespace: str,
    recovery: str,
    recovery_uid: str,
    attempt: int,
    image: str,
    deadline_seconds: int,
    pod_spec: Mapping[str, Any],
) -> dict[str, Any]:
    """Our Job for create-directory / clear-cache: the claim mounted, fixed argv, locked down."""
    if not recovery_uid:
        raise PlanError("the PipelineRecovery has no uid to own the Job")
    uid, gid = _run_as(pod_spec)
    labels = {
        **MANAGED_BY,
        LABEL_RECOVERY: recovery,
        LABEL_ATTEMPT: str(attempt),
        LABEL_ACTION: action,
        LABEL_ROLE: ROLE_REMEDIATION,
    }
    container_context = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": remediation_job_name(recovery, action, attempt),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": KIND,
                    "name": recovery,
                    "uid": recovery_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline_seconds,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": uid,
                        "runAsGroup": gid,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "remediate",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": claim_argv(action, target),
                            "securityContext": container_context,
                            "resources": copy.deepcopy(REMEDIATION_RESOURCES),
                            "volumeMounts": [{"name": "target", "mountPath": MOUNT_ROOT}],
                        }
                    ],
                    "volumes": [
                        {"name": "target", "persistentVolumeClaim": {"claimName": target.claim}}
                    ],
                },
            },
        },
    }


def job_condition(job: Mapping[str, Any]) -> str | None:
    """'Complete' or 'Failed' once the Job has finished, else None."""
    for cond in (job.get("status") or {}).get("conditions") or ():
        if cond.get("status") == "True" and cond.get("type") in ("Complete", "Failed"):
            return str(cond["type"])
    return None


def labels_of(job: Mapping[str, Any]) -> Mapping[str, str]:
    return (job.get("metadata") or {}).get("labels") or {}


def lineage(job: Mapping[str, Any]) -> tuple[str, str, int]:
    """(original Job name, original uid, attempts already made) — a retry of a retry counts on."""
    meta = job.get("metadata") or {}
    labels = labels_of(job)
    root = labels.get(LABEL_ORIGINAL_JOB)
    if root:
        try:
            done = max(0, int(labels.get(LABEL_ATTEMPT, "0")))
        except ValueError:
            done = 0
        uid = (meta.get("annotations") or {}).get(ANNOTATION_ORIGINAL_UID, "")
        return str(root), str(uid), done
    return str(meta.get("name", "")), str(meta.get("uid", "")), 0
