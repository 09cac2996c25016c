"""Kubernetes evidence as signals: Pod/Job status and core/v1 Events, pure functions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pipeline_recovery.model import Evidence, EvidenceSource, Signal

# Status offsets sort before any log line: Kubernetes saw the cause first-hand.
STATUS_OFFSET = -1

_WAITING: dict[str, tuple[str, int]] = {
    "ImagePullBackOff": ("image-pull", 95),
    "ErrImagePull": ("image-pull", 95),
    "ErrImageNeverPull": ("image-pull", 95),
    "InvalidImageName": ("image-pull", 95),
    "RegistryUnavailable": ("image-pull", 95),
    "CreateContainerConfigError": ("config-error", 95),
    "CreateContainerError": ("config-error", 85),
    "RunContainerError": ("config-error", 70),
}
_TERMINATED: dict[str, tuple[str, int]] = {
    "OOMKilled": ("out-of-memory", 100),
    "DeadlineExceeded": ("deadline-exceeded", 95),
    "Evicted": ("evicted", 95),
    "ContainerCannotRun": ("config-error", 70),
    "StartError": ("config-error", 70),
}
_EVENTS: dict[str, tuple[str, int]] = {
    "FailedScheduling": ("unschedulable", 90),
    "Evicted": ("evicted", 92),
    "OOMKilling": ("out-of-memory", 95),
    "DeadlineExceeded": ("deadline-exceeded", 92),
    "ErrImagePull": ("image-pull", 90),
    "ImagePullBackOff": ("image-pull", 90),
    "InspectFailed": ("image-pull", 88),
    "FailedMount": ("config-error", 80),
    "FailedAttachVolume": ("config-error", 70),
    "FailedCreatePodSandBox": ("config-error", 60),
    "FreeDiskSpaceFailed": ("disk-full", 85),
    "EvictionThresholdMet": ("evicted", 70),
}
_FAILED_EVENT_HINTS: tuple[tuple[str, str, int], ...] = (
    ("pull", "image-pull", 90),
    ("ImagePull", "image-pull", 90),
    ("CreateContainerConfigError", "config-error", 90),
    ("not found", "config-error", 75),
    ("exceeded quota", "unschedulable", 70),
)


def _signal(category: str, rule: str, priority: int, text: str, source: EvidenceSource,
            container: str | None = None, captures: Mapping[str, str] | None = None) -> Signal:
    evidence = Evidence(source=source, text=text[:1000], container=container, pattern_id=rule,
                        captures=dict(captures or {}))
    return Signal(category, rule, priority, evidence, offset=STATUS_OFFSET)


def _storage_pressure(message: str) -> bool:
    lowered = message.lower()
    return "ephemeral-storage" in lowered or "diskpressure" in lowered or "disk" in lowered


def _container_signals(status: Mapping[str, Any]) -> Iterable[Signal]:
    containers = [*(status.get("initContainerStatuses") or ()),
                  *(status.get("containerStatuses") or ())]
    for cs in containers:
        if not isinstance(cs, Mapping):
            continue
        name = str(cs.get("name") or "") or None
        image = str(cs.get("image") or "")
        for key in ("state", "lastState"):
            state = cs.get(key) or {}
            waiting = state.get("waiting") or {}
            reason = str(waiting.get("reason") or "")
            if reason in _WAITING:
                category, priority = _WAITING[reason]
                msg = str(waiting.get("message") or "")
                caps = {"image": image} if category == "image-pull" and image else {}
                yield _signal(category, f"k8s-waiting-{reason}", priority,
                              f"container {name} waiting: {reason}: {msg}".rstrip(": "),
                              "status", name, caps)
            terminated = state.get("terminated") or {}
            if not terminated:
                continue
            reason = str(terminated.get("reason") or "")
            code = terminated.get("exitCode")
            text = f"container {name} terminated: reason={reason or '-'} exitCode={code}"
            caps = {"exit_code": str(code)} if code is not None else {}
            if reason in _TERMINATED:
                category, priority = _TERMINATED[reason]
                yield _signal(category, f"k8s-terminated-{reason}", priority, text, "status",
                              name, caps)
            elif code == 137:
                # SIGKILL without OOMKilled: usually the memory cgroup, sometimes a kill.
                yield _signal("out-of-memory", "k8s-exit-137", 45, text, "status", name, caps)
            elif code == 143:
                yield _signal("deadline-exceeded", "k8s-exit-143", 25, text, "status", name, caps)


def status_signals(obj: Mapping[str, Any] | None) -> list[Signal]:
    """Signals from a Pod or Job as `kubectl get -o json` prints it."""
    if not isinstance(obj, Mapping):
        return []
    status = obj.get("status") or {}
    if not isinstance(status, Mapping):
        return []
    kind = str(obj.get("kind") or ("Job" if "succeeded" in status or "failed" in status else "Pod"))
    out: list[Signal] = []
    if kind == "Job":
        for cond in status.get("conditions") or ():
            if not isinstance(cond, Mapping) or cond.get("status") != "True":
                continue
            reason, msg = str(cond.get("reason") or ""), str(cond.get("message") or "")
            if reason == "DeadlineExceeded":
                out.append(_signal("deadline-exceeded", "k8s-job-DeadlineExceeded", 95,
                                   f"Job condition {cond.get('type')}: {reason}: {msg}", "status"))
        return out
    reason, msg = str(status.get("reason") or ""), str(status.get("message") or "")
    if reason == "Evicted":
        if _storage_pressure(msg):
            out.append(_signal("disk-full", "k8s-evicted-storage", 96,
                               f"pod evicted: {msg}", "status"))
        out.append(_signal("evicted", "k8s-pod-Evicted", 95, f"pod evicted: {msg}", "status"))
    elif reason == "DeadlineExceeded":
        out.append(_signal("deadline-exceeded", "k8s-pod-DeadlineExceeded", 95,
                           f"pod {reason}: {msg}", "status"))
    for cond in status.get("conditions") or ():
        if (isinstance(cond, Mapping) and cond.get("type") == "PodScheduled"
                and cond.get("status") == "False" and cond.get("reason") == "Unschedulable"):
            out.append(_signal("unschedulable", "k8s-pod-Unschedulable", 95,
                               f"pod unschedulable: {cond.get('message') or ''}", "status"))
    out.extend(_container_signals(status))
    return out


def event_signals(events: Sequence[Mapping[str, Any]]) -> list[Signal]:
    """Signals from core/v1 (or events.k8s.io) Event objects about the failed object."""
    out: list[Signal] = []
    for event in events:
        if not isinstance(event, Mapping):
            continue
        reason = str(event.get("reason") or "")
        message = str(event.get("message") or event.get("note") or "")
        text = f"event {reason}: {message}"
        hit = _EVENTS.get(reason)
        if reason == "Evicted" and _storage_pressure(message):
            hit = ("disk-full", 93)
        if hit is None and reason in {"Failed", "BackOff"}:
            hit = next(((cat, prio) for needle, cat, prio in _FAILED_EVENT_HINTS
                        if needle in message), None)
        if hit is not None:
            out.append(_signal(hit[0], f"k8s-event-{reason}", hit[1], text, "events"))
    return out
