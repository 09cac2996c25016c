"""A failed Job with pod logs becomes one diagnosed PipelineRecovery."""

from __future__ import annotations

from kmock_cluster import NS, list_recoveries, wait_recovery
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.status import DIAGNOSED_PHASES
from pipeline_recovery.workloads import ContainerRun

NPM_ENOENT = """\
> app@1.0.0 build /workspace
> webpack --mode production

npm ERR! code ENOENT
npm ERR! syscall open
npm ERR! path /workspace/package.json
npm ERR! errno -2
npm ERR! enoent ENOENT: no such file or directory, open '/workspace/package.json'
npm ERR! enoent This is related to npm not being able to find a file.
"""


async def test_failed_job_is_diagnosed_from_its_pod_log(cluster, operator):
    job, pod = await cluster.failed_job(NS, "build-42", [ContainerRun(log=NPM_ENOENT)])
    name = recovery_name("Job", "build-42", job["metadata"]["uid"])
    rec = await wait_recovery(cluster, name)
    status = rec["status"]
    assert status["phase"] in DIAGNOSED_PHASES
    assert rec["spec"]["target"] == {"kind": "Job", "name": "build-42",
                                     "uid": job["metadata"]["uid"]}
    assert status["category"] == "missing-file"
    assert status["evidence"]["source"] == "log"
    assert status["evidence"]["container"] == "build"
    assert "ENOENT" in status["evidence"]["text"]
    assert status["analysis"]["source"] == "patterns"
    assert status["analysis"]["fingerprint"]
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Diagnosed"]["status"] == "True"
    assert conds["LogsAvailable"]["status"] == "True"
    assert conds["Diagnosed"]["observedGeneration"] == rec["metadata"]["generation"]
    assert status["collected"]["logs"][0]["pod"] == pod["metadata"]["name"]
    assert len(await list_recoveries(cluster)) == 1
