"""High availability: two operator replicas with kopf peering against one emulated API server
never both act on one incident, and the standby takes over when the active replica stops."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml

from kmock_cluster import CRD, NS, make_runtime, recovery_path
from pipeline_recovery import event_reasons
from pipeline_recovery.emulator import ClusterEmulator, running_emulator
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.labels import GROUP, KIND, PLURAL
from pipeline_recovery.runner import run_embedded
from pipeline_recovery.runtime import Runtime
from pipeline_recovery.workloads import ContainerRun, Workloads

ROOT = Path(__file__).resolve().parents[2]
PEERING_PATH = "/apis/kopf.dev/v1/clusterkopfpeerings"
NPM_ENOENT = (
    "> app@1.0.0 build /workspace/app\n"
    "npm ERR! code ENOENT\n"
    "npm ERR! syscall open\n"
    "npm ERR! path /workspace/app/package.json\n"
    "npm ERR! enoent ENOENT: no such file or directory, open '/workspace/app/package.json'\n"
)
# Remediation is Off in these replicas: a diagnosed missing-file ends here.
FINAL = ("ManualActionRequired", "Error")


class Replica:
    """One operator replica as the Deployment runs it: cluster-wide, peering on, its own priority
    (kopf runs in its own thread and event loop, as in production each replica is a process)."""

    def __init__(self, rt: Runtime, priority: int) -> None:
        self.rt, self.priority = rt, priority
        self.stop_flag, self.ready_flag = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, daemon=True, name=f"replica-{priority}")

    def _main(self) -> None:
        try:
            asyncio.run(
                run_embedded(
                    self.rt,
                    clusterwide=True,
                    standalone=False,
                    priority=self.priority,
                    stop_flag=self.stop_flag,
                    ready_flag=self.ready_flag,
                )
            )
        except BaseException as exc:  # surfaced by start() in the test's thread
            self.error = exc
            self.ready_flag.set()

    async def start(self) -> Replica:
        self.thread.start()
        assert await asyncio.to_thread(self.ready_flag.wait, 15), "replica did not start"
        assert self.error is None, repr(self.error)
        return self

    async def stop(self) -> None:
        self.stop_flag.set()
        await asyncio.to_thread(self.thread.join, 20)


class PeeringLog(logging.Handler):
    """Collects kopf's peering decisions (pause / resume), which it only logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    async def wait_for(self, text: str, count: int = 1, timeout: float = 15.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while sum(text in m for m in self.messages) < count:
            assert loop.time() < deadline, f"kopf never logged {text!r}: {self.messages}"
            await asyncio.sleep(0.05)


@pytest.fixture
async def peered_cluster() -> AsyncIterator[tuple[ClusterEmulator, str, Workloads]]:
    # The emulator serves kopf's peering resource as the installed crds/kopf-peering.yaml does,
    # and holds the peering object of manifests/manager/peering.yaml. The journal of this test
    # is not left for test_rbac (it also holds peering requests); the RBAC check is below.
    async with running_emulator(CRD) as (emu, url):
        emu.namespaces.add(NS)
        verbs = {"get", "list", "watch", "create", "update", "patch", "delete"}
        emu.resources["kopf.dev/v1/clusterkopfpeerings"] = kmock.ResourceInfo(
            verbs=verbs, kind="ClusterKopfPeering", namespaced=False
        )
        async with Workloads(emu, url) as workloads:
            manifest = yaml.safe_load((ROOT / "manifests/manager/peering.yaml").read_text())
            await workloads.create(PEERING_PATH, manifest)
            yield emu, url, workloads


@pytest.fixture
def peering_log() -> AsyncIterator[PeeringLog]:
    handler = PeeringLog()
    logger = logging.getLogger("kopf._core.engines.peering")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield handler  # type: ignore[misc]
    logger.removeHandler(handler)
    logger.setLevel(previous)


def _replica(url: str, priority: int) -> Replica:
    return Replica(make_runtime(url, standalone=False, remediation_mode="Off"), priority)


async def _wait_all(
    cluster: Workloads, names: list[str], timeout: float = 20.0
) -> list[dict[str, Any]]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = {}
        for name in names:
            resp = await cluster.client.get(recovery_path(name))
            if resp.status_code == 200 and (resp.json().get("status") or {}).get("phase") in FINAL:
                found[name] = resp.json()
        if len(found) == len(names):
            return [found[n] for n in names]
        assert loop.time() < deadline, f"diagnosed only {sorted(found)} of {names}"
        await asyncio.sleep(0.05)


def _diagnosis(recovery: dict[str, Any]) -> dict[str, Any]:
    """What a second diagnosis would rewrite: verdict, evidence and the Diagnosed condition."""
    status = recovery["status"]
    conds = [c for c in status.get("conditions", []) if c["type"] == "Diagnosed"]
    return {k: status.get(k) for k in ("category", "evidence", "analysis")} | {"cond": conds}


def _creates(emu: ClusterEmulator) -> int:
    """POSTs of PipelineRecovery objects, successful or not (a 409 is a second actor's try)."""
    return sum(
        1 for e in emu.journal if e.method == "POST" and e.group == GROUP and e.resource == PLURAL
    )


def _events(emu: ClusterEmulator, reason: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for (res, _, _), obj in emu.objects.items():
        raw = obj.raw
        involved = raw.get("involvedObject") or {}
        if (
            res.plural == "events"
            and not obj.deleted
            and raw.get("reason") == reason
            and involved.get("kind") == KIND
        ):
            out[involved["name"]] += 1
    return out


async def _fail_jobs(cluster: Workloads, prefix: str, count: int) -> list[str]:
    names = []
    for i in range(count):
        job, _ = await cluster.failed_job(NS, f"{prefix}-{i}", [ContainerRun(log=NPM_ENOENT)])
        names.append(recovery_name("Job", job["metadata"]["name"], job["metadata"]["uid"]))
    return names


async def test_two_replicas_never_both_act_on_one_incident(
    peered_cluster: tuple[ClusterEmulator, str, Workloads],
    peering_log: PeeringLog,
) -> None:
    emu, url, cluster = peered_cluster
    low = await _replica(url, priority=100).start()
    high = await _replica(url, priority=200).start()
    try:
        # Both replicas keep their keep-alive in the one peering object; the lower one pauses.
        await peering_log.wait_for("Pausing operations in favour of")
        peers = (await cluster.get(f"{PEERING_PATH}/pipeline-recovery")).get("status") or {}
        assert sorted(p["priority"] for p in peers.values()) == [100, 200]

        names = await _fail_jobs(cluster, "build", 6)
        recoveries = await _wait_all(cluster, names)
        assert {r["status"]["category"] for r in recoveries} == {"missing-file"}

        # One create per incident: a second actor would have sent a second POST (409).
        assert _creates(emu) == len(names)
        # One diagnosis per incident: a second actor would have diagnosed and posted it again.
        assert _events(emu, event_reasons.DIAGNOSED) == Counter(dict.fromkeys(names, 1))

        # Failover: the active replica stops (it removes itself from the peering object on
        # the way out) and the standby resumes. Resuming, kopf replays every failed Job: the
        # standby tries to create the earlier incidents again, the deterministic names make that
        # a 409, and their diagnoses are left alone; new failures are handled once each.
        resumed = sum("Resuming operations" in m for m in peering_log.messages)
        await high.stop()
        await peering_log.wait_for("Resuming operations", count=resumed + 1)
        later = await _fail_jobs(cluster, "after-failover", 3)
        await _wait_all(cluster, later)
        stored = (await cluster.get(recovery_path()))["items"]
        assert sorted(r["metadata"]["name"] for r in stored) == sorted(names + later)
        assert [_diagnosis(r) for r in await _wait_all(cluster, names)] == [
            _diagnosis(r) for r in recoveries
        ]
        assert _events(emu, event_reasons.DIAGNOSED) == Counter(dict.fromkeys(names + later, 1))
    finally:
        await high.stop()
        await low.stop()


def _rules() -> list[dict[str, Any]]:
    """Every rule of every ClusterRole bound to the operator's ServiceAccount in manifests/."""
    docs = [
        d
        for p in sorted((ROOT / "manifests/rbac").glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text())
        if d
    ]
    bound = {
        d["roleRef"]["name"]
        for d in docs
        if d.get("kind") == "ClusterRoleBinding"
        and any(s.get("name") == "pipeline-recovery" for s in d.get("subjects", []))
    }
    return [
        r
        for d in docs
        if d.get("kind") == "ClusterRole" and d["metadata"]["name"] in bound
        for r in d.get("rules", [])
    ]


VERB = {"GET": "get", "POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


async def test_peering_requests_are_allowed_by_the_manifests_rbac(
    peered_cluster: tuple[ClusterEmulator, str, Workloads],
    peering_log: PeeringLog,
) -> None:
    emu, url, cluster = peered_cluster
    if not (ROOT / "manifests/rbac/role.yaml").exists():
        pytest.fail("manifests/rbac/role.yaml (the operator's ClusterRole) is missing")
    before = len(emu.journal)  # the test's own setup (creating the peering object) excluded
    replica = await _replica(url, priority=7).start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not (await cluster.get(f"{PEERING_PATH}/pipeline-recovery")).get("status"):
            assert loop.time() < deadline, "the replica never wrote its keep-alive"
            await asyncio.sleep(0.05)
    finally:
        await replica.stop()
    # Discovery (GET /apis/kopf.dev/v1) names no resource; every user may read it.
    peering = [e for e in emu.journal[before:] if e.group == "kopf.dev" and e.resource]
    assert {e.method for e in peering} >= {"GET", "PATCH"}, "kopf made no peering requests"
    rules = _rules()
    for entry in peering:
        verb = (
            ("watch" if entry.watch else "list" if entry.name is None else "get")
            if entry.method == "GET"
            else VERB[entry.method]
        )
        allowed = any(
            entry.group in r["apiGroups"]
            and entry.resource in r["resources"]
            and verb in r["verbs"]
            and (entry.name in r.get("resourceNames", [entry.name]))
            for r in rules
        )
        assert allowed, f"{verb} {entry.resource}/{entry.name} is not allowed by manifests/rbac"
