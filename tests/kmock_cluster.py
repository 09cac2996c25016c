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
