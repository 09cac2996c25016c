"""Labels, deterministic names and lineage of the Jobs remediation creates (pure)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

from ..labels import GROUP, INCIDENT_LABEL, MANAGED_BY_LABEL
from . import catalog

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

NAME_MAX: Final = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


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
