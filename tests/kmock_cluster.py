"""Shared fixtures (integration and contract tiers): the emulated cluster (ClusterEmulator over
HTTP), workload builders, and the operator running in process against it."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kopf
import pytest

from pipeline_recovery.emulator import ClusterEmulator, running_emulator
from pipeline_recovery.labels import API_VERSION, PLURAL
from pipeline_recovery.runner import EmbeddedOperator
from pipeline_recovery.runtime import Runtime
from pipeline_recovery.settings import Settings, load_settings
from pipeline_recovery.workloads import Workloads

ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "pipelinerecoveries.yaml"
NS = "ci"
# Statuses written and requests made during integration tests, for the contract tier.
RECORD_DIR = Path(os.environ.get("PIPELINE_RECOVERY_TEST_RECORDS",
                                 "/tmp/pipeline-recovery-records"))


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[ClusterEmulator, str]]:
    async with running_emulator(CRD) as (emu, url):
        emu.namespaces.add(NS)
        yield emu, url
        _record(emu)


@pytest.fixture
async def cluster(emulator: tuple[ClusterEmulator, str]) -> AsyncIterator[Workloads]:
    emu, url = emulator
    async with Workloads(emu, url) as workloads:
        yield workloads


def test_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {"pod_grace_seconds": 0, "metrics_port": 0, "standalone": True,
                            "log_limit_bytes": 1024 * 1024, "log_tail_lines": 5000}
    base.update(overrides)
    return load_settings(**base)


def make_runtime(url: str, **overrides: Any) -> Runtime:
    return Runtime(test_settings(**overrides), connection=kopf.ConnectionInfo(server=url),
                   fast=True, retries=3, backoff=0.02)


OperatorFactory = Callable[..., Awaitable[EmbeddedOperator]]


@pytest.fixture
async def start_operator(emulator: tuple[ClusterEmulator, str]
                         ) -> AsyncIterator[OperatorFactory]:
    """`op = await start_operator(**settings_overrides)`; `await op.stop()` to simulate a crash
    or restart; whatever is still running stops at teardown."""
    _, url = emulator
    running: list[EmbeddedOperator] = []

    async def start(rt: Runtime | None = None, namespaces: tuple[str, ...] = (NS,),
                    **overrides: Any) -> EmbeddedOperator:
        op = EmbeddedOperator(rt or make_runtime(url, **overrides), namespaces=namespaces)
        await op.start()
        running.append(op)
        return op

    yield start
    for op in running:
        await op.stop()


@pytest.fixture
async def operator(start_operator: OperatorFactory) -> EmbeddedOperator:
    return await start_operator()


def recovery_path(name: str | None = None, ns: str = NS) -> str:
    base = f"/apis/{API_VERSION}/namespaces/{ns}/{PLURAL}"
    return f"{base}/{name}" if name else base


async def wait_recovery(cluster: Workloads, name: str, phases: tuple[str, ...] = (
        "Diagnosed", "Error", "ManualActionRequired", "AwaitingApproval", "Remediating",
        "Recovered", "RemediationFailed"), ns: str = NS, timeout: float = 15.0) -> dict[str, Any]:
    """Poll until the PipelineRecovery reaches one of `phases`; its last state otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: dict[str, Any] = {}
    while loop.time() < deadline:
        resp = await cluster.client.get(recovery_path(name, ns))
        if resp.status_code == 200:
            last = resp.json()
            if (last.get("status") or {}).get("phase") in phases:
                return last
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} did not reach {phases}; last: {json.dumps(last)[:2000]}")


async def list_recoveries(cluster: Workloads, ns: str = NS) -> list[dict[str, Any]]:
    return list((await cluster.get(recovery_path(ns=ns)))["items"])


def _record(emu: ClusterEmulator) -> None:
    """Leave the statuses and the request journal for tests/contract (best effort)."""
    RECORD_DIR.mkdir(parents=True, exist_ok=True)
    objs = [o.raw for (res, _, _), o in emu.objects.items()
            if res.plural == PLURAL and not o.deleted]
    journal = [e.__dict__ for e in emu.journal]
    out = RECORD_DIR / f"{os.getpid()}-{id(emu)}.json"
    out.write_text(json.dumps({"recoveries": objs, "journal": journal}, default=str))


NPM_ENOENT = (
    "> app@1.0.0 build /workspace\n> webpack --mode production\n\n"
    "npm ERR! code ENOENT\nnpm ERR! syscall open\nnpm ERR! path /workspace/package.json\n"
    "npm ERR! enoent ENOENT: no such file or directory, open '/workspace/package.json'\n")
NET_TIMEOUT = ("npm ERR! code ETIMEDOUT\nnpm ERR! network request to "
               "https://registry.npmjs.org/react failed, "
               "reason: connect ETIMEDOUT 104.16.0.35:443\n")


async def run_contract_scenarios() -> tuple[list[dict[str, Any]], list[Any]]:
    """Every kind of incident the operator handles, once, with a fresh emulator and operator:
    returns (PipelineRecovery objects as finally stored, the request journal)."""
    from pipeline_recovery.emulator import LogSource
    from pipeline_recovery.incidents import recovery_name
    from pipeline_recovery.labels import API_VERSION, INCIDENT_LABEL, KIND
    from pipeline_recovery.workloads import ContainerRun

    async with running_emulator(CRD) as (emu, url), Workloads(emu, url) as c:
        emu.namespaces.add(NS)
        op = EmbeddedOperator(make_runtime(url), namespaces=[NS])
        await op.start()
        names = []
        job, _ = await c.failed_job(NS, "npm-build", [ContainerRun(log=NPM_ENOENT)])
        names.append(recovery_name("Job", "npm-build", job["metadata"]["uid"]))
        job, _ = await c.failed_job(NS, "npm-net", [ContainerRun(log=NET_TIMEOUT)])
        names.append(recovery_name("Job", "npm-net", job["metadata"]["uid"]))
        job, _ = await c.failed_job(NS, "oom", [ContainerRun(
            exit_code=137, reason="OOMKilled", memory_limit="512Mi", log="Killed\n")])
        names.append(recovery_name("Job", "oom", job["metadata"]["uid"]))
        pod = await c.pod(NS, "pull", [ContainerRun(exit_code=None, reason="ImagePullBackOff",
                                                    message="manifest unknown")])
        names.append(recovery_name("Pod", "pull", pod["metadata"]["uid"]))
        emu.logs[(NS, "secret-logs", "build", False)] = LogSource(error=403)
        pod = await c.pod(NS, "secret-logs", [ContainerRun(exit_code=2, reason="Error")])
        names.append(recovery_name("Pod", "secret-logs", pod["metadata"]["uid"]))
        await c.create(recovery_path(), {"apiVersion": API_VERSION, "kind": KIND,
                                         "metadata": {"name": "inline-1"},
                                         "spec": {"log": {"text": NPM_ENOENT}}})
        await c.create(recovery_path(), {"apiVersion": API_VERSION, "kind": KIND,
                                         "metadata": {"name": "gone-1"},
                                         "spec": {"target": {"kind": "Job", "name": "gone"}}})
        names += ["inline-1", "gone-1"]
        for name in names:
            await wait_recovery(c, name)
        # Let the remediation step run whatever it started to completion.
        for _ in range(3):
            jobs = (await c.get(f"/apis/batch/v1/namespaces/{NS}/jobs"))["items"]
            ours = [j for j in jobs if INCIDENT_LABEL in (j["metadata"].get("labels") or {})
                    and not j.get("status", {}).get("conditions")]
            for j in ours:
                await c.finish_job(NS, j["metadata"]["name"], succeeded=True)
            await asyncio.sleep(0.3)
        await op.stop()
        recs = list((await c.get(recovery_path()))["items"])
    return recs, list(emu.journal)
