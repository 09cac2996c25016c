"""Watch handlers for Jobs and Pods: read-only (on.event never writes to the watched objects)."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from pipeline_recovery import flow


@kopf.on.event("batch", "v1", "jobs")
async def job_event(body: kopf.Body, type: str, memo: Any,
                    logger: logging.Logger | logging.LoggerAdapter[Any], **kwargs: Any) -> None:
    memo.runtime.recovery_index = kwargs["recoveries_by_namespace"]  # remediation's outcome step
    await flow.on_workload_event(memo.runtime, "Job", body, type, logger)


@kopf.on.event("", "v1", "pods")
async def pod_event(body: kopf.Body, type: str, memo: Any,
                    logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any) -> None:
    await flow.on_workload_event(memo.runtime, "Pod", body, type, logger)
