"""Handlers for PipelineRecovery objects: diagnose on create, resume after restarts, re-run on
spec changes; an event handler keeps the phase gauge; an index holds them all in memory."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from pipeline_recovery import flow
from pipeline_recovery.labels import GROUP, PLURAL, VERSION


@kopf.index(GROUP, VERSION, PLURAL)
async def recoveries_by_namespace(body: kopf.Body, **_: Any) -> dict[str, Any]:
    return flow.index_entry(body)


@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def process(body: kopf.Body, memo: Any,
                  logger: logging.Logger | logging.LoggerAdapter[Any], **kwargs: Any) -> None:
    memo.runtime.recovery_index = kwargs["recoveries_by_namespace"]  # kopf passes every index
    try:
        await flow.process_recovery(memo.runtime, body, logger)
    except flow.RetryLater as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from exc


@kopf.on.event(GROUP, VERSION, PLURAL)
async def track(body: kopf.Body, type: str, memo: Any, **_: Any) -> None:
    flow.on_recovery_event(memo.runtime, body, type)
