"""Idempotency and bad input: replays, restarts, missing logs, missing targets, inline logs,
apiserver errors. None of them may duplicate an incident or stop the operator."""

from __future__ import annotations

import re

from kmock_cluster import NS, list_recoveries, recovery_path, wait_recovery
from pipeline_recovery.emulator import LogSource
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.labels import API_VERSION, KIND, PLURAL
from pipeline_recovery.status import DIAGNOSED_PHASES
from pipeline_recovery.workloads import ContainerRun

NET_LOG = ("npm ERR! code ETIMEDOUT\nnpm ERR! errno ETIMEDOUT\n"
           "npm ERR! network request to https://registry.npmjs.org/react failed, "
           "reason: connect ETIMEDOUT 104.16.0.35:443\n")


def _events_about(emu, name):
    return [o for (res, _, _), o in emu.objects.items()
            if res.plural == "events" and not o.deleted
            and o.raw.get("involvedObject", {}).get("name") == name]


async def test_replays_and_restarts_create_nothing_twice(emulator, cluster, start_operator):
    emu, _ = emulator
    op = await start_operator()
    job, _ = await cluster.failed_job(NS, "net-build", [ContainerRun(log=NET_LOG)])
    name = recovery_name("Job", "net-build", job["metadata"]["uid"])
    first = await wait_recovery(cluster, name)
    assert first["status"]["category"] == "network"
    # The same failure again: a MODIFIED event with nothing new, as on every re-list.
    await cluster.patch(f"/apis/batch/v1/namespaces/{NS}/jobs/net-build",
                        {"metadata": {"annotations": {"touched": "1"}}})
    await op.stop()
    # A restart replays every object; a fresh process knows nothing of the earlier one.
    await start_operator()
    marker_job, _ = await cluster.failed_job(NS, "marker", [ContainerRun(log=NET_LOG)])
    await wait_recovery(cluster, recovery_name("Job", "marker", marker_job["metadata"]["uid"]))
    assert sorted(r["metadata"]["name"] for r in await list_recoveries(cluster)) == sorted(
        [name, recovery_name("Job", "marker", marker_job["metadata"]["uid"])])
    again = (await cluster.get(recovery_path(name)))["status"]
    assert again["diagnosedAt"] == first["status"]["diagnosedAt"]
    diagnosed_events = [e for e in _events_about(emu, name) if e.raw["reason"] == "Diagnosed"]
    assert len(diagnosed_events) == 1


async def test_restart_half_way_resumes_the_diagnosis(emulator, cluster, start_operator):
    job, _ = await cluster.failed_job(NS, "half", [ContainerRun(log=NET_LOG)])
    name = recovery_name("Job", "half", job["metadata"]["uid"])
    # As left by a process that died after it moved the incident to Collecting.
    await cluster.create(recovery_path(), {
        "apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name},
        "spec": {"target": {"kind": "Job", "name": "half", "uid": job["metadata"]["uid"]}}})
    await cluster.patch_status(recovery_path(name), {"phase": "Collecting"})
    await start_operator()
    rec = await wait_recovery(cluster, name)
    assert rec["status"]["phase"] in DIAGNOSED_PHASES
    assert rec["status"]["category"] == "network"
    assert len(await list_recoveries(cluster)) == 1


async def test_forbidden_logs_diagnosed_from_status_and_said_so(emulator, cluster, operator):
    emu, _ = emulator
    job = await cluster.create(f"/apis/batch/v1/namespaces/{NS}/jobs",
                               {"metadata": {"name": "secret-logs"},
                                "spec": {"template": {"spec": {"containers": [
                                    {"name": "build", "image": "node:20"}]}}}})
    pod_name = "secret-logs-1"
    emu.logs[(NS, pod_name, "build", False)] = LogSource(b"", error=403)
    await cluster.pod(NS, pod_name, [ContainerRun(name="build", exit_code=137,
                                                  reason="OOMKilled")], owner=job)
    await cluster.patch_status(f"/apis/batch/v1/namespaces/{NS}/jobs/secret-logs", {
        "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]})
    rec = await wait_recovery(cluster, recovery_name("Job", "secret-logs", job["metadata"]["uid"]))
    status = rec["status"]
    assert status["category"] == "out-of-memory"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["LogsAvailable"]["status"] == "False"
    assert conds["LogsAvailable"]["reason"] == "LogsForbidden"
    assert "status and events" in conds["LogsAvailable"]["message"]
    assert emu.logs[(NS, pod_name, "build", False)].reads >= 1


async def test_rotated_previous_log_is_reported_unavailable(emulator, cluster, operator):
    emu, _ = emulator
    pod = await cluster.pod(NS, "flaky", [ContainerRun(
        name="main", exit_code=None, reason="CrashLoopBackOff", restarts=3)])
    emu.logs[(NS, "flaky", "main", True)] = LogSource(b"", error=400)
    rec = await wait_recovery(cluster, recovery_name("Pod", "flaky", pod["metadata"]["uid"]))
    conds = {c["type"]: c for c in rec["status"]["conditions"]}
    assert conds["LogsAvailable"]["reason"] == "LogsUnavailable"
    assert rec["status"]["collected"]["logs"][0]["previous"] is True


async def test_target_gone_is_explained(cluster, operator):
    name = "job-deleted-0000"
    await cluster.create(recovery_path(), {
        "apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name},
        "spec": {"target": {"kind": "Job", "name": "deleted-build"}}})
    rec = await wait_recovery(cluster, name)
    status = rec["status"]
    assert status["phase"] == "Error"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["TargetFound"]["status"] == "False"
    assert conds["Diagnosed"]["reason"] == "TargetNotFound"
    assert "deleted-build no longer exists" in status["message"]


async def test_inline_log_resource_is_diagnosed(cluster, operator):
    log = ("Step 4/9 : RUN pip install -r requirements.txt\n"
           "ERROR: Could not find a version that satisfies the requirement torch==9.9.9\n"
           "ERROR: No matching distribution found for torch==9.9.9\n"
           "export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n")
    await cluster.create(recovery_path(), {
        "apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": "gha-run-77"},
        "spec": {"log": {"text": log, "source": "github-actions", "container": "pip"}}})
    rec = await wait_recovery(cluster, "gha-run-77")
    status = rec["status"]
    assert status["phase"] in DIAGNOSED_PHASES
    assert status["category"] == "dependency-resolution"
    assert status["evidence"]["source"] == "inline"
    assert "wJalrXUtnFEMI" not in str(status)


async def test_apiserver_errors_are_retried(emulator, cluster, operator):
    emu, _ = emulator
    emu.faults.append(("PATCH", re.compile(rf"/{PLURAL}/job-retry-me-.*/status"), 503))
    emu.faults.append(("PATCH", re.compile(rf"/{PLURAL}/job-retry-me-.*/status"), 429))
    emu.faults.append(("GET", re.compile(r"/pods/retry-me-.*/log"), 500))
    job, _ = await cluster.failed_job(NS, "retry-me", [ContainerRun(log=NET_LOG)])
    rec = await wait_recovery(cluster, recovery_name("Job", "retry-me", job["metadata"]["uid"]))
    assert rec["status"]["category"] == "network"
    assert emu.faults == []


async def test_operator_never_writes_to_jobs_or_pods(emulator, cluster, operator):
    emu, _ = emulator
    job, _ = await cluster.failed_job(NS, "readonly", [ContainerRun(log=NET_LOG)])
    await wait_recovery(cluster, recovery_name("Job", "readonly", job["metadata"]["uid"]))
    ua_writes = [e for e in emu.journal
                 if e.resource in ("pods", "jobs") and e.method in ("PATCH", "PUT", "DELETE")
                 and e.subresource != "status"]
    # The only writes to pods/jobs are this test's own kubelet/controller stand-ins (status).
    assert ua_writes == []
