"""Remediation: a fixed catalog of safe actions, the policy that gates them, and their Jobs."""

from __future__ import annotations

from .catalog import ALLOWED, CATALOG, allowed_actions, is_catalog_action
from .claim_jobs import build_claim_job
from .history import estimate_recovery_minutes, preferred_action, similar_cases
from .ledger import Start, StartLedger
from .naming import retry_job_name
from .paths import ClaimPath, PathRefused, locate_in_claim, split_path
from .planner import first_job, plan_remediation, retry_job
from .policy import Decision
from .resources import PlanError
from .retry_jobs import build_retry_job
from .shaping import Failure, Shaped

__all__ = [
    "ALLOWED", "CATALOG", "ClaimPath", "Decision", "Failure", "PathRefused", "PlanError",
    "Shaped", "Start", "StartLedger", "allowed_actions", "build_claim_job", "build_retry_job",
    "estimate_recovery_minutes", "first_job", "is_catalog_action", "locate_in_claim",
    "plan_remediation", "preferred_action", "retry_job", "retry_job_name", "similar_cases",
    "split_path",
]
