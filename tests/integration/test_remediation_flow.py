"""Remediation end to end on the emulator: retries with more memory, backoff, create-directory."""

from __future__ import annotations

import asyncio
from typing import Any

import kubernetes_validate

from pipeline_recovery import metrics
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.workloads import ContainerRun

from kmock_cluster import NS, recovery_path, wait_recovery

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


async def test_oom_killed_job_is_retried_with_more_memory_and_recovers(cluster, start_operator):
    await start_operator(**FAST)
    before = sample("pipeline_recovery_recoveries_total", {"result": "recovered"})
    job, _ = await cluster.failed_job(NS, "train", [OOM])
    name = recovery_name("Job", "train", job["metadata"]["uid"])
    retry = await wait_job(cluster, "train-retry-1")
    resources = retry["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"memory": "768Mi"}, "requests": {"memory": "768Mi"}}
    labels = retry["metadata"]["labels"]
    assert labels["pipelinerecovery.dev/incident"] == name
    assert labels["pipelinerecovery.dev/original-job"] == "train"
    assert "selector" not in retry["spec"]
    validate(retry)
    rec = await wait_recovery(cluster, name, ("Remediating",))
    rem = rec["status"]["remediation"]
    assert rem["action"] == "retry-with-more-memory" and rem["jobName"] == "train-retry-1"
    assert rem["plan"]["parameters"]["oldLimit"] == "512Mi"
    assert rem["plan"]["parameters"]["newLimit"] == "768Mi"

    await cluster.finish_job(NS, "train-retry-1", succeeded=True)
    rec = await wait_recovery(cluster, name, ("Recovered",))
    rem = rec["status"]["remediation"]
    assert rem["result"] == "Succeeded" and rem["finishedAt"] and rem["attempts"] == 1
    assert [h["result"] for h in rem["history"]] == ["Succeeded"]
    assert sample("pipeline_recovery_recoveries_total", {"result": "recovered"}) == before + 1
    assert len(await our_jobs(cluster)) == 1


async def test_network_failure_is_retried_with_backoff_then_recovers(cluster, start_operator):
    await start_operator(**FAST, remediation_max_attempts=3)
    log = "npm ERR! code ETIMEDOUT\nnpm ERR! network request to https://registry.npmjs.org failed\n"
    job, _ = await cluster.failed_job(NS, "fetch", [ContainerRun(log=log)])
    name = recovery_name("Job", "fetch", job["metadata"]["uid"])
    await wait_job(cluster, "fetch-retry-1")
    await cluster.finish_job(NS, "fetch-retry-1", [ContainerRun(log=log)], succeeded=False)
    await wait_job(cluster, "fetch-retry-2")
    rec = await wait_recovery(cluster, name, ("Remediating",))
    assert rec["status"]["category"] == "network"
    await cluster.finish_job(NS, "fetch-retry-2", succeeded=True)
    rec = await wait_recovery(cluster, name, ("Recovered",))
    history = rec["status"]["remediation"]["history"]
    assert [(h["jobName"], h["result"]) for h in history] == [
        ("fetch-retry-1", "Failed"), ("fetch-retry-2", "Succeeded")]
    assert rec["status"]["remediation"]["attempts"] == 2
