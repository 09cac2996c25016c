"""A real Prometheus scrapes the operator while it diagnoses failures on the emulator; counters
count each failure once, however often kopf replays the objects."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from debian_tools import required_tool
from kmock_cluster import NS, wait_recovery
from pipeline_recovery import metrics
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.workloads import ContainerRun

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "manifests/prometheus/rules/pipeline-recovery.rules.yaml"
DASHBOARD = ROOT / "manifests/grafana/pipeline-recovery-dashboard.json"
JOB = "pipeline-recovery"  # the job label the alert rules select (ServiceMonitor relabels to it)
WAIT = 60.0  # upper bound of every wait below; never an assertion on speed

NET_LOG = (
    "npm ERR! code ETIMEDOUT\n"
    "npm ERR! network request to https://registry.npmjs.org/react failed, "
    "reason: connect ETIMEDOUT 104.16.0.35:443\n"
)
OOM = ContainerRun(log="Killed\n", exit_code=137, reason="OOMKilled", memory_limit="512Mi")
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prometheus_binary() -> str:
    return required_tool("prometheus")


def _registry_value(name: str, **labels: str) -> float:
    """Sum of the local registry's samples of `name` matching `labels` (what a scrape sees)."""
    total = 0.0
    for family in metrics.REGISTRY.collect():
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def _eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll `probe` until it returns something other than None; fail naming `what` after WAIT."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    last: Any = None
    while loop.time() < deadline:
        try:
            result = await probe()
        except httpx.HTTPError as exc:
            result, last = None, exc
        if result is not None:
            return result
        await asyncio.sleep(0.25)
    raise AssertionError(f"gave up waiting for {what} (last error: {last!r})")


async def _counted(read: Callable[[], float], at_least: float) -> float:
    """Wait until a registry value reaches `at_least` (counted by the operator's own thread)."""

    async def probe() -> float | None:
        value = read()
        return value if value >= at_least else None

    return await _eventually(probe, f"a counter to reach {at_least}")


@dataclass
class Prometheus:
    """A Prometheus server of our own on loopback and an HTTP client for its API."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path
    client: httpx.AsyncClient

    async def api(self, path: str, **params: str) -> Any:
        resp = await self.client.get(f"{self.url}/api/v1/{path}", params=params)
        resp.raise_for_status()
        body = resp.json()
        assert body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    async def value(self, expr: str) -> float | None:
        result = await self.query(expr)
        return float(result[0]["value"][1]) if result else None


@pytest.fixture
def metrics_endpoint() -> Iterator[int]:
    """The operator's /metrics, served exactly as `run` serves it, on a free loopback port."""
    server = metrics.start_server(_free_port(), addr="127.0.0.1")
    yield server.port
    server.close()


@pytest.fixture
async def prometheus(tmp_path: Path, metrics_endpoint: int) -> AsyncIterator[Prometheus]:
    binary = _prometheus_binary()
    port = _free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "evaluation_interval": "1s",
                },
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": JOB,
                        "static_configs": [{"targets": [f"127.0.0.1:{metrics_endpoint}"]}],
                    }
                ],
            }
        )
    )
    log = tmp_path / "prometheus.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--web.console.templates=/nonexistent",
                "--web.console.libraries=/nonexistent",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    url = f"http://127.0.0.1:{port}"
    client = httpx.AsyncClient(timeout=5)
    prom = Prometheus(url, process, log, client)
    try:

        async def ready() -> bool | None:
            if process.poll() is not None:
                raise AssertionError(f"prometheus exited: {log.read_text()[-2000:]}")
            resp = await client.get(f"{url}/-/ready")
            return True if resp.status_code == 200 else None

        await _eventually(ready, "prometheus to be ready")
        yield prom
    finally:
        await client.aclose()
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def _diagnose(cluster: Any, name: str, runs: list[ContainerRun]) -> dict[str, Any]:
    job, _ = await cluster.failed_job(NS, name, runs)
    return await wait_recovery(cluster, recovery_name("Job", name, job["metadata"]["uid"]))


async def test_prometheus_scrapes_the_operator_and_evaluates_the_rules(
    prometheus: Prometheus, cluster: Any, start_operator: Any
) -> None:
    before_oom = _registry_value(
        "pipeline_recovery_failures_detected_total", kind="Job", category="out-of-memory"
    )

    # Prometheus has scraped the idle operator before any failure: it sees them happen.
    async def scraped() -> bool | None:
        return True if await prometheus.value(f'up{{job="{JOB}"}}') == 1.0 else None

    await _eventually(scraped, "the first scrape")
    await start_operator(remediation_mode="Manual")
    oom = await _diagnose(cluster, "scrape-oom", [OOM])
    net = await _diagnose(cluster, "scrape-net", [ContainerRun(log=NET_LOG)])
    assert (oom["status"]["category"], net["status"]["category"]) == ("out-of-memory", "network")
    # The operator's thread counts right after it writes the status the test just read.
    counted = await _counted(
        lambda: _registry_value(
            "pipeline_recovery_failures_detected_total", kind="Job", category="out-of-memory"
        ),
        before_oom + 1,
    )
    assert counted == before_oom + 1

    # Prometheus has scraped what the operator counted: the totals it stores catch up with
    # the registry (other tests in this process may have counted before; compare totals).
    for name in (
        "pipeline_recovery_failures_detected_total",
        "pipeline_recovery_diagnoses_total",
        "pipeline_recovery_diagnosis_duration_seconds_count",
    ):

        async def caught_up(name: str = name) -> float | None:
            got = await prometheus.value(f'sum({name}{{job="{JOB}"}})')
            return got if got == _registry_value(name) else None

        assert await _eventually(caught_up, f"{name} in Prometheus == registry") >= 2

    series = await prometheus.query(
        'pipeline_recovery_failures_detected_total{job="pipeline-recovery",kind="Job"}'
    )
    by_category = {s["metric"]["category"]: s["metric"] for s in series}
    assert {"out-of-memory", "network"} <= set(by_category)
    assert by_category["out-of-memory"]["severity"] == "CRITICAL"
    assert set(by_category["network"]) == {
        "__name__", "job", "instance", "kind", "category", "severity"
    }, "only low-cardinality labels (plus Prometheus' job and instance)"
    sources = {s["metric"]["source"] for s in await prometheus.query(
        "pipeline_recovery_diagnoses_total")}
    assert "patterns" in sources
    phases = await prometheus.query("pipeline_recovery_incidents")
    assert {s["metric"]["phase"] for s in phases} >= set(metrics.PHASES)

    # Every project series Prometheus holds is one the contract names.
    names = await prometheus.api("label/__name__/values")
    ours = {n for n in names if n.startswith("pipeline_recovery_")}
    assert {"pipeline_recovery_failures_detected_total", "pipeline_recovery_diagnoses_total",
            "pipeline_recovery_incidents", "pipeline_recovery_build_info"} <= ours

    # The target is up under the job label the rules select; the operator-down alerts agree.
    targets = (await prometheus.api("targets"))["activeTargets"]
    assert [(t["labels"]["job"], t["health"]) for t in targets] == [(JOB, "up")]
    assert await prometheus.value('up{job="pipeline-recovery"}') == 1.0
    assert await prometheus.query('absent(up{job="pipeline-recovery"})') == []

    # The rules file loaded whole, and every rule evaluates without error against real data.
    expected_groups = yaml.safe_load(RULES.read_text())["groups"]
    expected_alerts = {r["alert"] for g in expected_groups for r in g["rules"]}

    async def rules_evaluated() -> list[dict[str, Any]] | None:
        groups: list[dict[str, Any]] = (await prometheus.api("rules"))["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return groups if rules and all(r["health"] == "ok" for r in rules) else None

    groups = await _eventually(rules_evaluated, "every rule evaluated with health ok")
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in expected_groups)
    assert {r["name"] for g in groups for r in g["rules"]} == expected_alerts
    assert all(not r.get("lastError") for g in groups for r in g["rules"])
    # OperatorAbsent may go pending before the first scrape; with the target up it must clear.
    async def operator_alerts_clear() -> bool | None:
        alerts = (await prometheus.api("alerts"))["alerts"]
        names = {a["labels"]["alertname"] for a in alerts}
        return None if names & {"PipelineRecoveryOperatorDown", "PipelineRecoveryOperatorAbsent"} \
            else True

    assert await _eventually(operator_alerts_clear, "operator alerts to clear")

    # Every dashboard query runs on the real server (syntax and types hold on real data) ...
    exprs = {
        panel["title"]: target["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel.get("targets", [])
    }
    for expr in exprs.values():
        await prometheus.query(expr)

    # ... and the failures-by-category panel shows both failures: the operator exports zeros
    # for known categories up front, so increase() sees each one's first failure too.
    async def both_categories() -> bool | None:
        result = await prometheus.query(exprs["Top failure categories (range)"])
        seen = {r["metric"]["category"] for r in result if float(r["value"][1]) > 0}
        return True if seen >= {"out-of-memory", "network"} else None

    assert await _eventually(both_categories, "both categories on the dashboard")


async def test_counters_advance_once_per_failure_across_replays_and_restarts(
    cluster: Any, start_operator: Any
) -> None:
    def counted() -> tuple[float, float, float]:
        return (
            _registry_value("pipeline_recovery_failures_detected_total", category="network"),
            _registry_value("pipeline_recovery_diagnoses_total", category="network"),
            _registry_value("pipeline_recovery_diagnosis_duration_seconds_count"),
        )

    start = counted()
    op = await start_operator(remediation_mode="Off")
    job, _ = await cluster.failed_job(NS, "once", [ContainerRun(log=NET_LOG)])
    name = recovery_name("Job", "once", job["metadata"]["uid"])
    await wait_recovery(cluster, name)
    await _counted(lambda: counted()[2], start[2] + 1)
    after_first = counted()
    assert after_first == (start[0] + 1, start[1] + 1, start[2] + 1)

    # kopf sees the same failed Job again (a MODIFIED event, as on every re-list) ...
    await cluster.patch(f"/apis/batch/v1/namespaces/{NS}/jobs/once",
                        {"metadata": {"annotations": {"touched": "1"}}})
    # ... and a restarted operator replays every Job and PipelineRecovery it finds.
    await op.stop()
    await start_operator(remediation_mode="Off")
    # A second, real failure is the marker that the new process has worked through the replay.
    marker, _ = await cluster.failed_job(NS, "marker", [ContainerRun(log=NET_LOG)])
    await wait_recovery(cluster, recovery_name("Job", "marker", marker["metadata"]["uid"]))
    await _counted(lambda: counted()[2], after_first[2] + 1)
    # The replayed "once" counted nothing: exactly one more of each, the marker's.
    assert counted() == (after_first[0] + 1, after_first[1] + 1, after_first[2] + 1)
