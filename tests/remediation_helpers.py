"""Helpers the remediation integration tests share: fast guard settings, Job lookups, metrics."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes_validate

from kmock_cluster import NS
from pipeline_recovery import metrics
from pipeline_recovery.workloads import ContainerRun

JOBS = f"/apis/batch/v1/namespaces/{NS}/jobs"
FAST = {"remediation_backoff_seconds": 0.05, "remediation_cooldown_seconds": 0.0}
OOM = ContainerRun(log="Killed\n", exit_code=137, reason="OOMKilled", memory_limit="512Mi")


async def wait_job(cluster: Any, name: str, timeout: float = 10.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        resp = await cluster.client.get(f"{JOBS}/{name}")
        if resp.status_code == 200:
            return dict(resp.json())
        await asyncio.sleep(0.05)
    raise AssertionError(f"Job {name} was never created")


async def our_jobs(cluster: Any) -> list[dict[str, Any]]:
    items = (await cluster.get(JOBS))["items"]
    return [j for j in items if "pipelinerecovery.dev/incident" in j["metadata"].get("labels", {})]


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels or {}) or 0.0


def validate(job: dict[str, Any]) -> None:
    body = {k: v for k, v in job.items() if k != "status"}
    kubernetes_validate.validate(body, "1.30.0", strict=False)
