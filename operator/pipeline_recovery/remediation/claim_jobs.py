"""Our own remediation Jobs: the claim mounted, a fixed argv, a locked-down pod (pure)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, Final

from ..labels import API_VERSION, KIND
from . import catalog
from .naming import (
    LABEL_ACTION,
    LABEL_ATTEMPT,
    LABEL_RECOVERY,
    LABEL_ROLE,
    MANAGED_BY,
    ROLE_REMEDIATION,
    remediation_job_name,
)
from .paths import MOUNT_ROOT, ClaimPath
from .resources import PlanError

NON_ROOT_UID: Final = 65532
REMEDIATION_RESOURCES: Final = {
    "requests": {"cpu": "10m", "memory": "16Mi", "ephemeral-storage": "16Mi"},
    "limits": {"cpu": "200m", "memory": "64Mi", "ephemeral-storage": "64Mi"},
}
TTL_AFTER_FINISHED: Final = 3600


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
