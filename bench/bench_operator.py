"""Operator latency: a burst of failing Jobs on the emulator, watch event → diagnosis in status."""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import kopf

from pipeline_recovery.emulator import ClusterEmulator, running_emulator
from pipeline_recovery.labels import PLURAL
from pipeline_recovery.runner import EmbeddedOperator
from pipeline_recovery.runtime import Runtime
from pipeline_recovery.settings import load_settings
from pipeline_recovery.status import DIAGNOSED_PHASES
from pipeline_recovery.workloads import ContainerRun, Workloads

JOBS = int(os.environ.get("BENCH_OPERATOR_JOBS", "200"))
NS = "bench"
CRD = Path(__file__).resolve().parents[1] / "crds" / "pipelinerecoveries.yaml"
LOGS = [
    "npm ERR! code ENOENT\nnpm ERR! enoent ENOENT: no such file or directory, "
    "open '/workspace/package.json'\n",
    "npm ERR! code ETIMEDOUT\nnpm ERR! network request to https://registry.npmjs.org/x failed, "
    "reason: connect ETIMEDOUT 104.16.0.35:443\n",
    "FAILED tests/test_api.py::test_create - AssertionError\n===== 1 failed, 99 passed =====\n",
    "error TS2304: Cannot find name 'foo'.\n",
]


async def _watch_diagnoses(emu: ClusterEmulator, seen: dict[str, float]) -> None:
    """Note when each PipelineRecovery first holds a diagnosis (the emulator's store, 10 ms)."""
    done: set[Any] = set()
    while True:
        for key, obj in list(emu.objects.items()):
            if key in done or key[0].plural != PLURAL or obj.deleted:
                continue
            raw = obj.raw
            if (raw.get("status") or {}).get("phase") in DIAGNOSED_PHASES:
                name = str(((raw.get("spec") or {}).get("target") or {}).get("name"))
                seen.setdefault(name, time.monotonic())
                done.add(key)
        await asyncio.sleep(0.01)


async def _run() -> dict[str, Any]:
    failed_at: dict[str, float] = {}
    diagnosed_at: dict[str, float] = {}
    async with running_emulator(CRD) as (emu, url), Workloads(emu, url) as cluster:
        emu.namespaces.add(NS)
        settings = load_settings(metrics_port=0, standalone=True, remediation_mode="Off",
                                 llm_api_key=None)
        rt = Runtime(settings, connection=kopf.ConnectionInfo(server=url), fast=True)
        async with EmbeddedOperator(rt, namespaces=[NS]):
            watcher = asyncio.create_task(_watch_diagnoses(emu, diagnosed_at))
            await asyncio.sleep(0.2)
            started = time.monotonic()

            gate = asyncio.Semaphore(20)  # a burst, within the client's connection pool

            async def one(i: int) -> None:
                async with gate:
                    await fail_job(i)

            async def fail_job(i: int) -> None:
                name = f"build-{i:03d}"
                run = ContainerRun(log=LOGS[i % len(LOGS)])
                await cluster.create(f"/apis/batch/v1/namespaces/{NS}/jobs", {
                    "metadata": {"name": name},
                    "spec": {"template": {"spec": {"containers": [
                        {"name": "build", "image": "node:20"}]}}}})
                job = await cluster.get(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}")
                await cluster.pod(NS, f"{name}-x", [run], owner=job)
                failed_at[name] = time.monotonic()  # the Job's Failed condition is the event
                await cluster.patch_status(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}", {
                    "conditions": [{"type": "Failed", "status": "True",
                                    "reason": "BackoffLimitExceeded"}]})

            await asyncio.gather(*(one(i) for i in range(JOBS)))
            deadline = time.monotonic() + 120
            while len(diagnosed_at) < JOBS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            total = time.monotonic() - started
            watcher.cancel()
    lat = sorted((diagnosed_at[n] - failed_at[n]) * 1000 for n in failed_at if n in diagnosed_at)
    return {"jobs": JOBS, "diagnosed": len(lat), "total_s": total,
            "median_ms": statistics.median(lat) if lat else float("nan"),
            "p95_ms": lat[int(len(lat) * 0.95) - 1] if lat else float("nan"),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    r = asyncio.run(_run())
    print(f"operator: {r['diagnosed']}/{r['jobs']} failed Jobs diagnosed in {r['total_s']:.1f}s; "
          f"watch event -> status: median {r['median_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms; "
          f"peak RSS {r['peak_rss_mb']:.0f} MiB (operator + emulator in one process)")
    return 0 if r["diagnosed"] == r["jobs"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
