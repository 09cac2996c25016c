"""Remediation end to end on the emulator: retries with more memory, backoff, create-directory."""

from __future__ import annotations

import asyncio
from typing import Any

from kmock_cluster import NS, recovery_path, wait_recovery
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.workloads import ContainerRun
from remediation_helpers import FAST, JOBS, OOM, our_jobs, sample, validate, wait_job


async def test_oom_killed_job_is_retried_with_more_memory_and_recovers(cluster, start_operator):
    await start_operator(**FAST)
    before = sample("pipeline_recovery_recoveries_total", {"result": "recovered"})
    mem = "retry-with-more-memory"
    started = sample("pipeline_recovery_remediations_total", {"action": mem, "result": "started"})
    worked = sample("pipeline_recovery_remediations_total", {"action": mem, "result": "succeeded"})
    durations = sample("pipeline_recovery_recovery_duration_seconds_count")
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
    # Replays of the same Job events (kopf re-lists, MODIFIED after Complete) count nothing more.
    await cluster.patch(f"{JOBS}/train-retry-1", {"metadata": {"annotations": {"touch": "1"}}})
    await cluster.patch(recovery_path(name), {"metadata": {"annotations": {"touch": "1"}}})
    await asyncio.sleep(0.3)
    assert sample("pipeline_recovery_recoveries_total", {"result": "recovered"}) == before + 1
    assert sample("pipeline_recovery_remediations_total",
                  {"action": mem, "result": "started"}) == started + 1
    assert sample("pipeline_recovery_remediations_total",
                  {"action": mem, "result": "succeeded"}) == worked + 1
    assert sample("pipeline_recovery_recovery_duration_seconds_count") == durations + 1
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


def pvc_job(name: str) -> dict[str, Any]:
    pod_spec = {
        "restartPolicy": "Never",
        "securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
        "containers": [{
            "name": "build", "image": "node:20", "command": ["npm", "run", "build"],
            "volumeMounts": [{"name": "ws", "mountPath": "/workspace"}],
        }],
        "volumes": [{"name": "ws", "persistentVolumeClaim": {"claimName": "workspace"}}],
    }
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"backoffLimit": 0, "template": {"spec": pod_spec}}}


async def failed_pvc_job(cluster: Any, name: str, log: str) -> tuple[dict[str, Any], str]:
    job = await cluster.create(JOBS, pvc_job(name))
    await cluster.finish_job(NS, name, [ContainerRun(log=log)], succeeded=False, job=job)
    return job, recovery_name("Job", name, job["metadata"]["uid"])


async def test_missing_directory_in_claim_is_created_then_retried(cluster, start_operator):
    await start_operator(**FAST)
    log = ("> webpack --mode production\n"
           "Error: ENOENT: no such file or directory, scandir '/workspace/dist/assets'\n")
    _, name = await failed_pvc_job(cluster, "site", log)
    mkdir = await wait_job(cluster, f"{name}-mkdir-1")
    container = mkdir["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["mkdir", "-p", "--", "/mnt/target/dist/assets"]
    assert mkdir["spec"]["template"]["spec"]["volumes"] == [
        {"name": "target", "persistentVolumeClaim": {"claimName": "workspace"}}]
    assert container["securityContext"]["runAsUser"] == 1000
    assert mkdir["metadata"]["ownerReferences"][0]["name"] == name
    validate(mkdir)
    rec = await wait_recovery(cluster, name, ("Remediating",))
    assert rec["status"]["category"] == "missing-file"
    assert rec["status"]["remediation"]["plan"]["parameters"] == {
        "claim": "workspace", "path": "dist/assets"}

    await cluster.finish_job(NS, f"{name}-mkdir-1", succeeded=True)
    retry = await wait_job(cluster, "site-retry-1")
    assert retry["spec"]["template"]["spec"]["containers"][0]["command"] == ["npm", "run", "build"]
    await cluster.finish_job(NS, "site-retry-1", succeeded=True)
    rec = await wait_recovery(cluster, name, ("Recovered",))
    history = rec["status"]["remediation"]["history"]
    assert [(h["jobName"], h["result"]) for h in history] == [
        (f"{name}-mkdir-1", "Succeeded"), ("site-retry-1", "Succeeded")]


async def test_paths_outside_the_claim_are_refused(cluster, start_operator):
    await start_operator(**FAST)
    names = []
    for i, path in enumerate(["/etc/app/conf.d", "/workspace/../etc/cron.d",
                              "/workspace/out;rm -rf ~"]):
        log = f"Error: ENOENT: no such file or directory, scandir '{path}'\n"
        names.append((await failed_pvc_job(cluster, f"bad-{i}", log))[1])
    for name in names:
        rec = await wait_recovery(cluster, name, ("ManualActionRequired",))
        assert rec["status"]["remediation"]["action"] == "none"
        assert rec["status"]["remediation"]["result"] == "Refused"
        assert "create-directory" in rec["status"]["remediation"]["plan"]["reason"]
    assert await our_jobs(cluster) == []


async def test_manual_mode_waits_for_approval_then_runs(cluster, start_operator):
    await start_operator(**FAST, remediation_mode="Manual")
    job, _ = await cluster.failed_job(NS, "etl", [OOM])
    name = recovery_name("Job", "etl", job["metadata"]["uid"])
    rec = await wait_recovery(cluster, name, ("AwaitingApproval",))
    plan = rec["status"]["remediation"]["plan"]
    assert plan["action"] == "retry-with-more-memory" and plan["parameters"]["newLimit"] == "768Mi"
    assert await our_jobs(cluster) == []
    # An out-of-catalog and an out-of-policy suggestion land in status (as the AI step would).
    await cluster.patch_status(recovery_path(name), {"analysis": {
        **rec["status"]["analysis"], "suggestedAction": "docker system prune -af --volumes"}})
    await cluster.patch(recovery_path(name), {"spec": {"remediation": {"approved": True}}})
    retry = await wait_job(cluster, "etl-retry-1")
    assert retry["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "768Mi"}
    rec = await wait_recovery(cluster, name, ("Remediating",))
    assert "outside the catalog" in rec["status"]["remediation"]["plan"]["reason"]
    assert "prune" not in str(rec["status"]["remediation"])
    await cluster.finish_job(NS, "etl-retry-1", succeeded=True)
    await wait_recovery(cluster, name, ("Recovered",))


async def test_off_mode_never_creates_a_job(cluster, start_operator):
    await start_operator(**FAST, remediation_mode="Off")
    job, _ = await cluster.failed_job(NS, "nightly", [OOM])
    name = recovery_name("Job", "nightly", job["metadata"]["uid"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    rec: dict[str, Any] = {}
    while loop.time() < deadline:
        resp = await cluster.client.get(recovery_path(name))
        rec = resp.json() if resp.status_code == 200 else {}
        if (rec.get("status") or {}).get("remediation", {}).get("result") == "Off":
            break
        await asyncio.sleep(0.05)
    assert rec["status"]["phase"] == "Diagnosed"
    assert rec["status"]["remediation"]["plan"]["action"] == "retry-with-more-memory"
    assert await our_jobs(cluster) == []
