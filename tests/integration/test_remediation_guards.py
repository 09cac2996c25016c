"""Remediation guards on the emulator: attempt cap, loop guard, rate limit, restarts, history."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from kmock_cluster import NS, list_recoveries, wait_recovery
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.workloads import ContainerRun
from remediation_helpers import FAST, OOM, our_jobs, wait_job

NET_LOG = "npm ERR! code ECONNRESET\nnpm ERR! network aborted: socket hang up\n"


async def test_max_attempts_stops_a_job_that_always_fails(cluster, start_operator):
    await start_operator(**FAST, remediation_max_attempts=2)
    job, _ = await cluster.failed_job(NS, "flaky", [OOM])
    name = recovery_name("Job", "flaky", job["metadata"]["uid"])
    first = await wait_job(cluster, "flaky-retry-1")
    oom_again = [ContainerRun(log="Killed\n", exit_code=137, reason="OOMKilled")]
    await cluster.finish_job(NS, "flaky-retry-1", oom_again, succeeded=False, job=first)
    second = await wait_job(cluster, "flaky-retry-2")
    # The second retry starts from the first one's limits: 512Mi -> 768Mi -> 1152Mi.
    limits = second["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"memory": "1152Mi"}
    assert second["metadata"]["labels"]["pipelinerecovery.dev/original-job"] == "flaky"
    await cluster.finish_job(NS, "flaky-retry-2", oom_again, succeeded=False, job=second)
    rec = await wait_recovery(cluster, name, ("RemediationFailed",))
    rem = rec["status"]["remediation"]
    assert rem["attempts"] == 2 and rem["result"] == "Exhausted"
    assert [h["result"] for h in rem["history"]] == ["Failed", "Failed"]
    assert sorted(j["metadata"]["name"] for j in await our_jobs(cluster)) == [
        "flaky-retry-1", "flaky-retry-2"]


async def test_loop_guard_counts_a_retry_of_a_retry_against_the_original(cluster, start_operator):
    await start_operator(**FAST, remediation_max_attempts=3)
    # A copy of our third retry, seen as a fresh failure (e.g. its incident was deleted and the
    # Job re-applied without the incident label): its lineage labels still count.
    lineage = {"pipelinerecovery.dev/original-job": "deploy",
               "pipelinerecovery.dev/attempt": "3"}
    job, _ = await cluster.failed_job(NS, "deploy-retry-3", [OOM], labels=lineage)
    name = recovery_name("Job", "deploy-retry-3", job["metadata"]["uid"])
    rec = await wait_recovery(cluster, name, ("RemediationFailed", "ManualActionRequired"))
    assert rec["status"]["phase"] == "RemediationFailed"
    assert "3 of at most 3" in rec["status"]["remediation"]["message"]
    assert await our_jobs(cluster) == []


async def test_failure_storm_starts_no_more_jobs_than_the_rate_limit(cluster, start_operator):
    await start_operator(**FAST, remediation_namespace_jobs_per_minute=5)
    names = []
    for batch in range(10):
        made = await asyncio.gather(*(
            cluster.failed_job(NS, f"storm-{i}", [ContainerRun(log=NET_LOG)])
            for i in range(batch * 10, batch * 10 + 10)))
        names += [recovery_name("Job", j["metadata"]["name"], j["metadata"]["uid"])
                  for j, _ in made]
    for name in names:
        await wait_recovery(cluster, name, ("Remediating",), timeout=40)
    jobs = await our_jobs(cluster)
    assert len(jobs) == 5
    recs = await list_recoveries(cluster)
    waiting = [r for r in recs if r["status"]["remediation"]["result"] == "Waiting"]
    assert len(waiting) == 95
    assert all("rate limit" in r["status"]["remediation"]["message"] for r in waiting)
    assert all(r["status"]["remediation"]["nextAttemptAt"] for r in waiting)


async def test_restart_mid_remediation_starts_nothing_twice(cluster, start_operator, emulator):
    emu, _ = emulator
    op = await start_operator(**FAST)
    job, _ = await cluster.failed_job(NS, "report", [OOM])
    name = recovery_name("Job", "report", job["metadata"]["uid"])
    await wait_job(cluster, "report-retry-1")
    await wait_recovery(cluster, name, ("Remediating",))
    await op.stop()
    op = await start_operator(**FAST)
    await cluster.finish_job(NS, "report-retry-1", succeeded=True)
    await wait_recovery(cluster, name, ("Recovered",))
    await op.stop()
    await start_operator(**FAST)  # a resume of a finished incident changes nothing
    await asyncio.sleep(0.5)
    assert [j["metadata"]["name"] for j in await our_jobs(cluster)] == ["report-retry-1"]
    posts = [e for e in emu.journal if e.method == "POST" and e.resource == "jobs"
             and e.namespace == NS]
    assert len(posts) == 2  # the failed Job itself, and the one retry


async def test_crash_between_intent_and_create_creates_the_job_once(cluster, start_operator,
                                                                    emulator):
    emu, _ = emulator
    job, _ = await cluster.failed_job(NS, "ingest", [OOM])
    name = recovery_name("Job", "ingest", job["metadata"]["uid"])
    # The API server refuses Job creation: the intent reaches status, the Job does not.
    jobs_path = re.compile(rf"^/apis/batch/v1/namespaces/{NS}/jobs$")
    emu.faults.extend([("POST", jobs_path, 503)] * 8)
    op = await start_operator(**FAST)
    rec = await wait_recovery(cluster, name, ("Remediating",))
    assert rec["status"]["remediation"]["jobName"] == "ingest-retry-1"
    assert rec["status"]["remediation"]["result"] == "Starting"
    await op.stop()  # the crash
    emu.faults.clear()
    await start_operator(**FAST)
    retry = await wait_job(cluster, "ingest-retry-1")
    assert retry["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "768Mi"}
    rec = await wait_recovery(cluster, name, ("Remediating",))
    await cluster.finish_job(NS, "ingest-retry-1", succeeded=True)
    rec = await wait_recovery(cluster, name, ("Recovered",))
    assert [h["jobName"] for h in rec["status"]["remediation"]["history"]] == ["ingest-retry-1"]
    assert [j["metadata"]["name"] for j in await our_jobs(cluster)] == ["ingest-retry-1"]


async def test_similar_cases_and_estimate_come_from_earlier_incidents(cluster, start_operator):
    await start_operator(**FAST)
    job, _ = await cluster.failed_job(NS, "model-a", [OOM])
    first = recovery_name("Job", "model-a", job["metadata"]["uid"])
    await wait_job(cluster, "model-a-retry-1")
    await cluster.finish_job(NS, "model-a-retry-1", succeeded=True)
    done = await wait_recovery(cluster, first, ("Recovered",))
    assert done["status"]["similarCases"] == []
    job, _ = await cluster.failed_job(NS, "model-b", [OOM])
    second = recovery_name("Job", "model-b", job["metadata"]["uid"])
    rec = await wait_recovery(cluster, second, ("Remediating",))
    cases = rec["status"]["similarCases"]
    assert [c["name"] for c in cases] == [first]
    case: dict[str, Any] = cases[0]
    assert case["action"] == "retry-with-more-memory" and case["result"] == "Recovered"
    assert case["fingerprint"] == rec["status"]["analysis"]["fingerprint"]
    assert rec["status"]["estimatedRecoveryMinutes"] == case["recoveryMinutes"]
    assert rec["status"]["remediation"]["action"] == "retry-with-more-memory"
