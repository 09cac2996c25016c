"""Operator latency: a burst of failing Jobs on the emulator, Job Failed written → diagnosis in
the PipelineRecovery status; the operator runs in its own process so that its figures (time,
peak RSS) are its own, not shared with the emulator and the load generator."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

from pipeline_recovery.emulator import ClusterEmulator, LogSource
from pipeline_recovery.labels import GROUP, PLURAL, VERSION
from pipeline_recovery.stage_clock import STAGES
from pipeline_recovery.status import DIAGNOSED_PHASES
from pipeline_recovery.workloads import ContainerRun, job_body, pod_body

JOBS = int(os.environ.get("BENCH_OPERATOR_JOBS", "200"))
CONCURRENCY = 20  # how many Jobs the load generator fails at once
GOAL_MS = 1000.0  # "well under a second": median and p95 must stay below this
NS = "bench"
RESOURCE = f"{GROUP}/{VERSION}/{PLURAL}"
ROOT = Path(__file__).resolve().parents[1]
CRD = ROOT / "crds" / "pipelinerecoveries.yaml"
LOGS = [
    "npm ERR! code ENOENT\nnpm ERR! enoent ENOENT: no such file or directory, "
    "open '/workspace/package.json'\n",
    "npm ERR! code ETIMEDOUT\nnpm ERR! network request to https://registry.npmjs.org/x failed, "
    "reason: connect ETIMEDOUT 104.16.0.35:443\n",
    "FAILED tests/test_api.py::test_create - AssertionError\n===== 1 failed, 99 passed =====\n",
    "error TS2304: Cannot find name 'foo'.\n",
]


@attrs.define(kw_only=True)
class TimedEmulator(ClusterEmulator):
    """Notes (monotonic clock, shared by all processes) when a PipelineRecovery's status first
    holds a diagnosis, as the store answers the PATCH."""

    failed_at: dict[str, float] = attrs.field(factory=dict, init=False)  # by the load generator
    diagnosed_at: dict[str, float] = attrs.field(factory=dict, init=False)

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        resp = await super().__call__(raw)
        if raw.method == "PATCH" and raw.path.endswith("/status") and resp.status < 300:
            parts = raw.path.strip("/").split("/")  # .../namespaces/NS/PLURAL/NAME/status
            ns, plural, name = parts[-4], parts[-3], parts[-2]
            now = time.monotonic()
            obj = self._find(RESOURCE, ns, name) if plural == PLURAL else {}
            status = obj.get("status") or {}
            if plural == PLURAL and status.get("phase") in DIAGNOSED_PHASES:
                target = ((obj.get("spec") or {}).get("target") or {}).get("name")
                self.diagnosed_at.setdefault(f"{ns}/{target}", now)
        return resp

    def _find(self, resource: str, ns: str, name: str) -> dict[str, Any]:
        try:
            obj = self.objects[resource, ns, name]
        except KeyError:
            return {}
        return {} if obj.deleted else dict(obj.raw)


@contextlib.asynccontextmanager
async def _emulator() -> AsyncIterator[tuple[TimedEmulator, str]]:
    async with TimedEmulator() as emu, kmock.Server(emu) as server:
        crd = yaml.safe_load(CRD.read_text())
        emu.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None,
                    crd["metadata"]["name"]] = crd
        yield emu, str(server.url).rstrip("/")


def _rss_kib(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def _cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _sample_rss(pid: int, peak: list[int]) -> None:
    """Peak RSS of the operator during the burst, sampled from outside (no load on it)."""
    while True:
        try:
            peak[0] = max(peak[0], _rss_kib(pid)["VmRSS"])
        except (OSError, KeyError):
            return
        await asyncio.sleep(0.02)


class LoadGenerator:
    """Fails Jobs the way the Job controller and kubelet would (create, then status), over an
    aiohttp session: httpx's per-request CPU would starve the emulator sharing this process."""

    def __init__(self, emu: TimedEmulator, session: aiohttp.ClientSession) -> None:
        self.emu, self.session = emu, session

    async def _call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        async with self.session.request(method, path, json=body, headers=headers) as resp:
            resp.raise_for_status()
            result: dict[str, Any] = await resp.json()
            return result

    async def fail_job(self, i: int) -> None:
        name, run = f"build-{i:03d}", ContainerRun(log=LOGS[i % len(LOGS)])
        jobs = f"/apis/batch/v1/namespaces/{NS}/jobs"
        job = await self._call("POST", jobs, job_body(NS, name, [run]))
        pod = pod_body(NS, f"{name}-x", [run], owner=job)
        pods = f"/api/v1/namespaces/{NS}/pods"
        await self._call("POST", pods, pod)
        self.emu.logs[(NS, f"{name}-x", run.name, False)] = LogSource(str(run.log).encode())
        await self._call("PATCH", f"{pods}/{name}-x/status", {"status": {
            "phase": "Failed", "containerStatuses": [{
                "name": run.name, "image": run.image, "ready": False, "restartCount": 0,
                "state": run.state()}]}})
        # Stamped as the request leaves: the latency includes its transit (errs on the long side).
        self.emu.failed_at[f"{NS}/{name}"] = time.monotonic()
        await self._call("PATCH", f"{jobs}/{name}/status", {"status": {"failed": 1, "conditions": [
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
             "message": "Job has reached the specified backoff limit"}]}})


async def _watching(emu: TimedEmulator, timeout: float) -> bool:
    """True once the operator watches Jobs, Pods and PipelineRecoveries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        watched = {e.resource for e in emu.journal if e.watch}
        if {"jobs", "pods", PLURAL} <= watched:
            return True
        await asyncio.sleep(0.05)
    return False


async def _run() -> dict[str, Any]:
    async with _emulator() as (emu, url):
        emu.namespaces.add(NS)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.bench_operator", "--operator", url,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
        assert child.stdin is not None and child.stdout is not None
        try:
            ready = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
            if not await _watching(emu, 15):
                raise RuntimeError("the operator did not start watching")
            await asyncio.sleep(0.3)  # let the initial lists settle
            baseline = _rss_kib(child.pid)["VmRSS"]
            peak = [baseline]
            sampler = asyncio.create_task(_sample_rss(child.pid, peak))
            started = time.monotonic()
            cpu0, own0 = _cpu_s(child.pid), time.process_time()
            gate = asyncio.Semaphore(CONCURRENCY)
            async with aiohttp.ClientSession(url) as session:
                load = LoadGenerator(emu, session)

                async def one(i: int) -> None:
                    async with gate:
                        await load.fail_job(i)

                await asyncio.gather(*(one(i) for i in range(JOBS)))
            generated = time.monotonic() - started
            deadline = time.monotonic() + 90
            while len(emu.diagnosed_at) < JOBS and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            cpu = _cpu_s(child.pid) - cpu0, time.process_time() - own0
            await asyncio.sleep(0.3)  # remediation's trailing requests, for the peak
            hwm = _rss_kib(child.pid)["VmHWM"]
            sampler.cancel()
            child.stdin.write(b"stop\n")
            await child.stdin.drain()
            marks = json.loads(await asyncio.wait_for(child.stdout.readline(), 60))
        finally:
            if child.returncode is None:
                child.stdin.close()
                try:
                    await asyncio.wait_for(child.wait(), 30)
                except TimeoutError:
                    child.kill()
                    await child.wait()
    failed, diagnosed = emu.failed_at, dict(emu.diagnosed_at)
    for k, at in marks.items():  # the operator may see the PATCH's answer before the store's
        if k in diagnosed and "status_patched" in at:  # post-request hook runs: take the first
            diagnosed[k] = min(diagnosed[k], at["status_patched"])
    keys = [k for k in failed if k in diagnosed]
    lat = sorted((diagnosed[k] - failed[k]) * 1000 for k in keys)
    stages = _stage_table(keys, failed, diagnosed, marks)
    span = (max(diagnosed[k] for k in keys) - min(failed[k] for k in keys)) if keys else 0.0
    return {"jobs": JOBS, "diagnosed": len(lat), "lat": lat, "generated_s": generated,
            "span_s": span, "stages": stages, "startup_rss_kib": ready.get("rss_kib", 0),
            "cpu": cpu, "baseline_kib": baseline, "peak_kib": peak[0], "hwm_kib": hwm}


def _stage_table(keys: list[str], failed: dict[str, float], diagnosed: dict[str, float],
                 marks: dict[str, dict[str, float]]) -> list[tuple[str, float, float]]:
    """(step, median ms, p95 ms) between consecutive stages, Job Failed → status stored."""
    order = ["failed_sent", *STAGES]
    steps: dict[str, list[float]] = {}
    for k in keys:
        at = {"failed_sent": failed[k], **marks.get(k, {})}
        at.setdefault("status_patched", diagnosed[k])
        present = [s for s in order if s in at]
        for a, b in itertools.pairwise(present):
            steps.setdefault(f"{a} -> {b}", []).append((at[b] - at[a]) * 1000)
    out = []
    for a, b in itertools.pairwise(order):
        vals = sorted(steps.get(f"{a} -> {b}", []))
        if vals:
            out.append((f"{a} -> {b}", statistics.median(vals), _pct(vals, 0.95)))
    return out


def _pct(sorted_vals: list[float], q: float) -> float:
    return sorted_vals[max(0, min(len(sorted_vals) - 1, int(len(sorted_vals) * q + 0.5) - 1))]


# -- the operator's process --------------------------------------------------------------------
async def _operator_main(url: str) -> None:
    import kopf

    from pipeline_recovery import stage_clock
    from pipeline_recovery.runner import run_embedded
    from pipeline_recovery.runtime import Runtime
    from pipeline_recovery.settings import load_settings

    stage_clock.enable()
    settings = load_settings(metrics_port=0, standalone=True, remediation_mode="Off",
                             llm_api_key=None)
    rt = Runtime(settings, connection=kopf.ConnectionInfo(server=url), fast=True)
    stop, ready = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def read_stop() -> None:
        sys.stdin.readline()
        loop.call_soon_threadsafe(stop.set)

    async def announce() -> None:
        await ready.wait()
        print(json.dumps({"rss_kib": _rss_kib(os.getpid())["VmRSS"]}), flush=True)

    import threading

    threading.Thread(target=read_stop, daemon=True).start()
    announcer = asyncio.create_task(announce())
    await run_embedded(rt, namespaces=[NS], stop_flag=stop, ready_flag=ready)
    announcer.cancel()
    print(json.dumps(stage_clock.recorded()), flush=True)


def main() -> int:
    r = asyncio.run(_run())
    lat = r["lat"]
    med = statistics.median(lat) if lat else float("nan")
    p95 = _pct(lat, 0.95) if lat else float("nan")
    mib = 1024.0
    print(f"burst: {r['jobs']} failing Jobs, {CONCURRENCY} at a time; emulator and load "
          f"generator in this process, operator in its own (remediation Off, no LLM)")
    print(f"diagnosed: {r['diagnosed']}/{r['jobs']}; load generated in {r['generated_s']:.1f}s; "
          f"first Failed -> last diagnosis {r['span_s']:.1f}s "
          f"({r['diagnosed'] / r['span_s'] if r['span_s'] else 0:.0f} diagnoses/s)")
    print(f"latency Job Failed written -> PipelineRecovery diagnosed: median {med:.0f} ms, "
          f"p95 {p95:.0f} ms, max {max(lat) if lat else float('nan'):.0f} ms")
    print(f"CPU during the burst: operator {r['cpu'][0]:.1f}s, emulator + load generator "
          f"{r['cpu'][1]:.1f}s ({os.cpu_count()} CPUs)")
    print("  per step (median / p95 ms):")
    for step, m, p in r["stages"]:
        print(f"    {step:<40} {m:8.1f} {p:8.1f}")
    print(f"operator RSS: {r['baseline_kib'] / mib:.0f} MiB idle, peak {r['peak_kib'] / mib:.0f} "
          f"MiB during the burst (+{(r['peak_kib'] - r['baseline_kib']) / mib:.0f} MiB), "
          f"high-water mark {r['hwm_kib'] / mib:.0f} MiB (start-up included)")
    ok = r["diagnosed"] == r["jobs"] and med < GOAL_MS and p95 < GOAL_MS
    print(f"goal: median and p95 well under {GOAL_MS:.0f} ms -> {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--operator":
        asyncio.run(_operator_main(sys.argv[2]))
        raise SystemExit(0)
    raise SystemExit(main())
