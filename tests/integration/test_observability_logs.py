"""JSON log lines the running operator writes while diagnosing carry the incident's name and
category, and Events carry reasons users can filter on."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from kmock_cluster import NS, wait_recovery
from pipeline_recovery import event_reasons
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.logging_setup import JsonFormatter
from pipeline_recovery.workloads import ContainerRun

NET_LOG = (
    "npm ERR! code ETIMEDOUT\n"
    "npm ERR! network request to https://registry.npmjs.org/react failed, "
    "reason: connect ETIMEDOUT 104.16.0.35:443\n"
)


class _Lines(logging.Handler):
    """Formats every record as the operator's JSON formatter would print it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines() -> Iterator[_Lines]:
    handler = _Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


async def test_diagnosis_log_lines_carry_name_and_category(
    cluster: Any, start_operator: Any, json_lines: _Lines
) -> None:
    await start_operator(remediation_mode="Off")
    objects = logging.getLogger("kopf.objects")
    level = objects.level
    objects.setLevel(logging.INFO)  # the embedded test operator keeps kopf's object log quiet
    try:
        job, _ = await cluster.failed_job(NS, "logged", [ContainerRun(log=NET_LOG)])
        name = recovery_name("Job", "logged", job["metadata"]["uid"])
        rec = await wait_recovery(cluster, name)
        # The operator's thread logs its verdict just after writing the status read above.
        for _ in range(200):
            entries = [json.loads(line) for line in json_lines.lines]
            diagnosed = [e for e in entries if e["message"].startswith("diagnosed ")]
            if diagnosed:
                break
            await asyncio.sleep(0.05)
    finally:
        objects.setLevel(level)
    assert rec["status"]["category"] == "network"
    assert diagnosed, f"no 'diagnosed' line among {[e['message'] for e in entries][:20]}"
    line = diagnosed[-1]
    assert line["pipelinerecovery"] == name
    assert line["namespace"] == NS
    assert line["category"] == "network"
    assert line["object"]["kind"] == "PipelineRecovery"


async def test_events_use_the_documented_reasons(cluster: Any, start_operator: Any) -> None:
    await start_operator(remediation_mode="Manual")
    job, _ = await cluster.failed_job(NS, "evented", [ContainerRun(log=NET_LOG)])
    name = recovery_name("Job", "evented", job["metadata"]["uid"])
    await wait_recovery(cluster, name, phases=("AwaitingApproval", "ManualActionRequired"))
    wanted = {event_reasons.AWAITING_APPROVAL, event_reasons.MANUAL_ACTION_REQUIRED}
    for _ in range(200):  # Events are posted just after the status the wait above read
        events = (await cluster.get(f"/api/v1/namespaces/{NS}/events"))["items"]
        about = [e for e in events if e["involvedObject"]["name"] == name]
        reasons = {e["reason"] for e in about}
        if reasons & wanted:
            break
        await asyncio.sleep(0.05)
    assert event_reasons.DIAGNOSED in reasons
    assert reasons & wanted
    assert reasons <= set(event_reasons.ALL_REASONS), "an Event reason outside the contract"
    for event in about:
        assert event["type"] == event_reasons.event_type(event["reason"])
