"""Bare Pods and Pods stuck waiting: OOM kills, image pulls and config errors, from status alone."""

from __future__ import annotations

from kmock_cluster import NS, list_recoveries, wait_recovery
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.status import DIAGNOSED_PHASES
from pipeline_recovery.workloads import ContainerRun

JAVA_OOM = ("Starting tests...\n"
            "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n")


async def test_oom_killed_bare_pod(cluster, operator):
    pod = await cluster.pod(NS, "gradle-test", [ContainerRun(
        name="gradle", log=JAVA_OOM, exit_code=137, reason="OOMKilled", memory_limit="512Mi")])
    rec = await wait_recovery(cluster, recovery_name("Pod", "gradle-test", pod["metadata"]["uid"]))
    status = rec["status"]
    assert rec["spec"]["target"]["kind"] == "Pod"
    assert status["category"] == "out-of-memory"
    assert status["severity"] == "CRITICAL"
    assert status["phase"] in DIAGNOSED_PHASES
    assert status["collected"]["logs"][0]["container"] == "gradle"


async def test_image_pull_failure_from_status_alone(cluster, operator):
    pod = await cluster.pod(NS, "deploy-step", [ContainerRun(
        name="kubectl", exit_code=None, reason="ImagePullBackOff",
        message='Back-off pulling image "registry.example.com/tools:v9"')])
    rec = await wait_recovery(cluster, recovery_name("Pod", "deploy-step", pod["metadata"]["uid"]))
    status = rec["status"]
    assert status["category"] == "image-pull"
    assert status["evidence"]["source"] == "status"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["LogsAvailable"]["status"] == "Unknown"
    assert conds["LogsAvailable"]["reason"] == "NoLogs"
    assert status["collected"]["logs"] == []


async def test_job_pod_stuck_on_config_error_raises_the_jobs_incident(cluster, operator):
    runs = [ContainerRun(name="test", exit_code=None, reason="CreateContainerConfigError",
                         message='secret "npm-token" not found')]
    job = await cluster.create(f"/apis/batch/v1/namespaces/{NS}/jobs",
                               {"metadata": {"name": "unit-tests"},
                                "spec": {"template": {"spec": {"containers": [
                                    {"name": "test", "image": "node:20"}]}}}})
    await cluster.pod(NS, "unit-tests-abcde", runs, owner=job)
    rec = await wait_recovery(cluster, recovery_name("Job", "unit-tests", job["metadata"]["uid"]))
    assert rec["spec"]["target"] == {"kind": "Job", "name": "unit-tests",
                                     "uid": job["metadata"]["uid"]}
    assert rec["status"]["category"] == "config-error"
    assert "npm-token" in rec["status"]["evidence"]["text"]
    # The pod's incident is the Job's: no PipelineRecovery for the pod itself.
    assert [r["spec"]["target"]["kind"] for r in await list_recoveries(cluster)] == ["Job"]


async def test_pod_within_grace_is_rechecked_then_reported(cluster, start_operator):
    await start_operator(pod_grace_seconds=0.5)
    pod = await cluster.pod(NS, "pull-later", [ContainerRun(
        name="main", exit_code=None, reason="ErrImagePull", message="manifest unknown")])
    rec = await wait_recovery(cluster, recovery_name("Pod", "pull-later", pod["metadata"]["uid"]))
    assert rec["status"]["category"] == "image-pull"


async def test_opted_out_and_own_pods_are_ignored(cluster, operator):
    from pipeline_recovery.labels import INCIDENT_LABEL

    quiet = await cluster.pod(NS, "quiet", [ContainerRun(exit_code=1, log="boom\n")],
                              labels={"pipelinerecovery.dev/ignore": "true"})
    ours = await cluster.create(f"/api/v1/namespaces/{NS}/pods", {
        "metadata": {"name": "ours", "labels": {INCIDENT_LABEL: "job-x-1234abcd"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    await cluster.patch_status(f"/api/v1/namespaces/{NS}/pods/ours", {"phase": "Failed"})
    # A later, reported failure proves the operator has seen the events before it.
    marker = await cluster.pod(NS, "marker", [ContainerRun(exit_code=1, log="boom\n")])
    await wait_recovery(cluster, recovery_name("Pod", "marker", marker["metadata"]["uid"]))
    names = {r["spec"]["target"]["name"] for r in await list_recoveries(cluster)}
    assert names == {"marker"}, (quiet["metadata"]["name"], ours["metadata"]["name"])


async def test_watch_selector_limits_incidents_to_matching_objects(cluster, start_operator):
    await start_operator(watch_selector="team in (payments),!experimental")
    await cluster.failed_job(NS, "web-build", [ContainerRun(exit_code=1, log="boom\n")],
                             labels={"team": "web"})
    await cluster.pod(NS, "payments-lab", [ContainerRun(exit_code=1, log="boom\n")],
                      labels={"team": "payments", "experimental": "yes"})
    # The matching failure comes last: once it is diagnosed, the earlier events were seen too.
    job, _ = await cluster.failed_job(NS, "payments-build",
                                      [ContainerRun(exit_code=1, log="boom\n")],
                                      labels={"team": "payments"})
    await wait_recovery(cluster, recovery_name("Job", "payments-build", job["metadata"]["uid"]))
    names = {r["spec"]["target"]["name"] for r in await list_recoveries(cluster)}
    assert names == {"payments-build"}
