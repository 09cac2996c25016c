"""Re-creating a failed Job as our retry: a cleaned copy carrying the planned change (pure)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from .naming import (
    ANNOTATION_CHANGES,
    ANNOTATION_ORIGINAL_UID,
    LABEL_ACTION,
    LABEL_ATTEMPT,
    LABEL_ORIGINAL_JOB,
    LABEL_RECOVERY,
    LABEL_ROLE,
    MANAGED_BY,
    ROLE_RETRY,
    retry_job_name,
)
from .resources import ResourceChange, find_container

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


def _strip_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if k not in _CONTROLLER_LABELS}


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


