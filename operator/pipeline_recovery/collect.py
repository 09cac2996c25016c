"""Collect step: the failed target, its pods, their failed containers' logs (streamed into the
classifier, bounded) and events; every gap is recorded, never fatal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipeline_recovery import kube

logger = logging.getLogger(__name__)
MAX_PODS = 3


class LogStream(Protocol):
    def feed(self, chunk: bytes) -> None: ...
    def finish(self) -> Any: ...


class Scanner(Protocol):
    def open_stream(self, *, source: str, container: str | None) -> LogStream: ...
    def scan_bytes(self, data: bytes, *, source: str, container: str | None) -> Any: ...


@dataclass
class LogRead:
    """One container log read: what came back, or why nothing did."""

    pod: str
    container: str
    previous: bool
    bytes: int = 0
    lines: int = 0
    error: str | None = None
    error_kind: str | None = None  # forbidden | unavailable | failed

    def as_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pod": self.pod, "container": self.container,
                               "previous": self.previous, "bytes": self.bytes, "lines": self.lines}
        if self.error:
            out["error"] = self.error[:1000]
        return out


@dataclass
class Collected:
    """Everything the classifier and the AI step get for one incident."""

    target: Mapping[str, Any] | None = None
    target_found: bool = True
    target_error: str | None = None
    pods: list[Mapping[str, Any]] = field(default_factory=list)
    events: list[Mapping[str, Any]] = field(default_factory=list)
    scans: list[Any] = field(default_factory=list)
    reads: list[LogRead] = field(default_factory=list)
    primary_pod: str | None = None

    @property
    def status_object(self) -> Mapping[str, Any] | None:
        """The Pod (with its termination reasons) when there is one, else the Job itself; a Job
        past its deadline speaks for itself (its pod was merely killed)."""
        target = self.target or {}
        for cond in (target.get("status") or {}).get("conditions") or []:
            if cond.get("type") == "Failed" and cond.get("reason") == "DeadlineExceeded":
                return target
        for pod in self.pods:
            if pod.get("metadata", {}).get("name") == self.primary_pod:
                return pod
        return self.target

    def logs_state(self) -> tuple[bool | None, str, str]:
        """(available, reason, message) for the LogsAvailable condition."""
        if not self.reads:
            return None, "NoLogs", "no container ran far enough to write a log; " \
                "diagnosed from status and events"
        ok = [r for r in self.reads if r.error is None]
        failed = [r for r in self.reads if r.error is not None]
        if not failed:
            total = sum(r.bytes for r in ok)
            return True, "LogsRead", f"read {total} bytes from {len(ok)} container log(s)"
        kinds = {r.error_kind for r in failed}
        reason = "LogsForbidden" if "forbidden" in kinds else "LogsUnavailable"
        first = failed[0]
        what = f"{first.pod}/{first.container}: {first.error}"
        if ok:
            return True, reason, f"some logs unavailable ({what}); used the rest"
        return False, reason, f"logs unavailable ({what}); diagnosed from status and events alone"

    def k8s_evidence_lines(self) -> list[str]:
        """Short Kubernetes facts for the AI step (no log text)."""
        lines: list[str] = []
        target = self.target or {}
        for cond in (target.get("status") or {}).get("conditions") or []:
            if cond.get("status") == "True":
                lines.append(f"{target.get('kind', 'Job')} condition {cond.get('type')}: "
                             f"{cond.get('reason', '')} {cond.get('message', '')}".strip())
        for pod in self.pods:
            name = pod.get("metadata", {}).get("name")
            status = pod.get("status") or {}
            lines.append(
                f"Pod {name} phase {status.get('phase')} {status.get('reason', '')}".strip())
            for cs in _container_statuses(pod):
                for key in ("state", "lastState"):
                    for state, detail in (cs.get(key) or {}).items():
                        if state in ("terminated", "waiting"):
                            lines.append(
                                f"container {cs.get('name')} {key} {state}: "
                                f"reason={detail.get('reason')} exitCode={detail.get('exitCode')} "
                                f"{detail.get('message', '')}".strip())
        for ev in self.events:
            lines.append(f"Event {ev.get('type')} {ev.get('reason')} on "
                         f"{(ev.get('involvedObject') or {}).get('name')}: {ev.get('message')}")
        return lines[:60]


def _container_statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status") or {}
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def failed_containers(pod: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(container, previous) whose logs explain the failure: terminated non-zero now, or the
    instance before a restart; containers that never ran have no log."""
    out: list[tuple[str, bool]] = []
    for cs in _container_statuses(pod):
        state = cs.get("state") or {}
        term = state.get("terminated")
        last = (cs.get("lastState") or {}).get("terminated")
        if term is not None and (term.get("exitCode") not in (0, None) or
                                 term.get("reason") == "OOMKilled"):
            out.append((str(cs.get("name")), False))
        elif last is not None and int(cs.get("restartCount") or 0) > 0:
            out.append((str(cs.get("name")), True))
    return out


def _pod_failed(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") == "Failed" or failed_containers(pod):
        return True
    return any((cs.get("state") or {}).get("waiting") for cs in _container_statuses(pod))


async def collect_target(client: kube.KubeClient, clf: Scanner, namespace: str, kind: str,
                         name: str, uid: str | None, *, limit_bytes: int, tail_lines: int
                         ) -> Collected:
    out = Collected()
    try:
        if kind == "Job":
            out.target = await client.get_job(namespace, name)
        else:
            out.target = await client.get_pod(namespace, name)
        found_uid = out.target.get("metadata", {}).get("uid")
        if uid and found_uid and found_uid != uid:
            out.target, out.target_found = None, False
            out.target_error = f"{kind} {name} was replaced (uid {found_uid}, expected {uid})"
    except kube.NotFound:
        out.target_found = False
        out.target_error = f"{kind} {name} no longer exists"
    except kube.Forbidden as exc:
        out.target_found = False
        out.target_error = f"not allowed to read {kind} {name}: {exc.message}"

    # The reads are independent: under a burst of incidents, doing them one after the other
    # put every round trip of a loaded API server on the incident's latency.
    own_events = asyncio.ensure_future(_events(client, namespace, [(kind, name, uid)]))
    try:
        if out.target is not None:
            if kind == "Job":
                pods = await client.list_job_pods(namespace, name, uid)
                failed = [p for p in pods if _pod_failed(p)]
                failed.sort(key=lambda p: p.get("metadata", {}).get("creationTimestamp", ""),
                            reverse=True)
                out.pods = list(failed[:MAX_PODS])
            else:
                out.pods = [out.target]
            if out.pods:
                out.primary_pod = out.pods[0].get("metadata", {}).get("name")
        wanted = [("Pod", str(p.get("metadata", {}).get("name")), p.get("metadata", {}).get("uid"))
                  for p in out.pods if kind == "Job"]
        logs = [_read_log(client, clf, namespace, str(pod.get("metadata", {}).get("name")),
                          container, previous, limit_bytes, tail_lines)
                for pod in out.pods for container, previous in failed_containers(pod)]
        pod_events, *results = await _all(_events(client, namespace, wanted), *logs)
        events = [*await own_events, *pod_events]
    finally:
        own_events.cancel()  # a no-op once done; on failure nothing is left running
    for read, scan in results:
        out.reads.append(read)
        if scan is not None:
            out.scans.append(scan)
    events.sort(key=lambda e: str(e.get("lastTimestamp") or e.get("firstTimestamp") or ""))
    out.events = events[-50:]
    return out


async def _all(*steps: Awaitable[Any]) -> list[Any]:
    """Results in order; the first failure cancels the rest and propagates as it is."""
    tasks = [asyncio.ensure_future(s) for s in steps]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        raise


async def _read_log(client: kube.KubeClient, clf: Scanner, namespace: str, pod: str,
                    container: str, previous: bool, limit_bytes: int, tail_lines: int
                    ) -> tuple[LogRead, Any]:
    read = LogRead(pod=pod, container=container, previous=previous)
    stream = clf.open_stream(source="log", container=container)
    try:
        async for chunk in client.stream_pod_log(namespace, pod, container, previous=previous,
                                                 limit_bytes=limit_bytes, tail_lines=tail_lines):
            read.bytes += len(chunk)
            stream.feed(chunk)
    except kube.Forbidden as exc:
        read.error, read.error_kind = f"forbidden: {exc.message}", "forbidden"
    except (kube.NotFound, kube.BadRequest) as exc:
        read.error, read.error_kind = f"gone or rotated: {exc.message}", "unavailable"
    except kube.KubeError as exc:
        read.error, read.error_kind = str(exc), "failed"
    scan = stream.finish()
    read.lines = int(getattr(scan, "lines", 0) or 0)
    if read.error is not None and read.bytes == 0:
        return read, None
    return read, scan


async def _events(client: kube.KubeClient, namespace: str,
                  wanted: Sequence[tuple[str, str, str | None]]) -> list[Mapping[str, Any]]:
    events: list[Mapping[str, Any]] = []
    for k, n, u in wanted:
        try:
            events.extend(await client.list_events(namespace, k, n, u))
        except (kube.Forbidden, kube.NotFound) as exc:
            logger.warning("events of %s %s unavailable: %s", k, n, exc)
    return events


def collect_inline(clf: Scanner, text: str, container: str | None, max_bytes: int) -> Collected:
    """A log posted in spec.log: scanned the same way, source `inline`."""
    data = text.encode("utf-8", errors="replace")[:max_bytes]
    scan = clf.scan_bytes(data, source="inline", container=container or "inline")
    read = LogRead(pod="", container=container or "inline", previous=False, bytes=len(data),
                   lines=int(getattr(scan, "lines", 0) or 0))
    return Collected(target=None, target_found=True, scans=[scan], reads=[read])
