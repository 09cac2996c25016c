"""The remediation entry points the operator uses: plan an incident, then build the Jobs (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..settings import Settings
from . import catalog
from .claim_jobs import build_claim_job
from .ledger import StartLedger
from .policy import Decision, decide, effective_max_attempts, effective_mode
from .resources import PlanError
from .retry_jobs import build_retry_job
from .shaping import Failure


def plan_remediation(
    failure: Failure,
    *,
    settings: Settings,
    spec: Mapping[str, Any],
    attempts_done: int,
    failed_at: float,
    now: float,
    ledger: StartLedger,
    target: str,
) -> Decision:
    """Decide the next step for a failure from spec.remediation, settings and the guards."""
    remediation = spec.get("remediation") or {}
    return decide(
        failure,
        settings=settings,
        mode=effective_mode(remediation.get("mode"), settings, failure.namespace),
        approved=remediation.get("approved") is True,
        max_attempts=effective_max_attempts(remediation.get("maxAttempts"), settings),
        attempts_done=attempts_done,
        failed_at=failed_at,
        now=now,
        ledger=ledger,
        target=target,
    )


def retry_job(
    decision: Decision, failure: Failure, *, root_name: str, root_uid: str
) -> dict[str, Any]:
    """The re-created failed Job for this decision (with its resource or deadline change)."""
    if failure.job is None:
        raise PlanError("no Job to re-create")
    shaped = decision.shaped
    job = build_retry_job(
        failure.job,
        root_name=root_name,
        root_uid=root_uid,
        recovery=failure.recovery,
        attempt=decision.attempt,
        action=shaped.action,
        resource_change=shaped.resource_change,
        deadline_change=shaped.deadline_change,
    )
    job["metadata"]["namespace"] = failure.namespace
    return job


def first_job(
    decision: Decision, failure: Failure, settings: Settings, *, root_name: str, root_uid: str
) -> dict[str, Any]:
    """The first Job an action creates: our own fixed-argv Job, or directly the retry."""
    shaped = decision.shaped
    if not catalog.CATALOG[shaped.action].reruns_target:
        raise PlanError(f"{shaped.action} creates no Job")
    if catalog.CATALOG[shaped.action].authors_job:
        if shaped.claim_path is None:
            raise PlanError(f"{shaped.action} has no validated path")
        pod_spec: Mapping[str, Any] = (
            (failure.pod or {}).get("spec")
            or (((failure.job or {}).get("spec") or {}).get("template") or {}).get("spec")
            or {}
        )
        return build_claim_job(
            shaped.action,
            shaped.claim_path,
            namespace=failure.namespace,
            recovery=failure.recovery,
            recovery_uid=failure.recovery_uid,
            attempt=decision.attempt,
            image=settings.remediation_image,
            deadline_seconds=settings.remediation_job_deadline_seconds,
            pod_spec=pod_spec,
        )
    return retry_job(decision, failure, root_name=root_name, root_uid=root_uid)
