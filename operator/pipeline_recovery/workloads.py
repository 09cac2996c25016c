"""Failing (and succeeding) Jobs and Pods on the emulator, made the way the Job controller and
kubelet would: created over HTTP, then their status patched, so watches see real events."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from pipeline_recovery.emulator import ClusterEmulator, LogSource


def _ts(delta: float = 0.0) -> str:
    when = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delta)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ContainerRun:
    """How one container of a pod ended (or failed to start)."""

    name: str = "build"
    log: str | bytes | None = None
    exit_code: int | None = 1  # None: never ran (waiting)
    reason: str = "Error"  # terminated reason (Error, OOMKilled, ...) or waiting reason
    message: str = ""
    restarts: int = 0  # >0: the log belongs to the previous (restarted) container
    init: bool = False
    memory_limit: str | None = None
    image: str = "node:20-bookworm"

    def state(self) -> dict[str, Any]:
        if self.exit_code is None:
            return {"waiting": {"reason": self.reason, "message": self.message}}
        term = {"exitCode": self.exit_code, "reason": self.reason, "message": self.message,
                "startedAt": _ts(-30), "finishedAt": _ts()}
        return {"terminated": {k: v for k, v in term.items() if v != ""}}


@dataclass
class Workloads:
    """HTTP client for building scenarios; `emu` is also used to preset pod logs."""

    emu: ClusterEmulator
    base_url: str
    client: httpx.AsyncClient = field(init=False)

    async def __aenter__(self) -> Workloads:
        self.client = httpx.AsyncClient(base_url=self.base_url, timeout=10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else {}
        resp = await self.client.request(method, path, json=body, headers=headers)
        resp.raise_for_status()
        result: dict[str, Any] = resp.json()
        return result

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, dict(body))

    async def delete(self, path: str) -> dict[str, Any]:
        return await self.request("DELETE", path)

    async def patch(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, dict(body))

    async def patch_status(self, path: str, status: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path + "/status", {"status": dict(status)})

    # -- scenarios -------------------------------------------------------------------------------
    async def failed_job(
        self, namespace: str, name: str, runs: Sequence[ContainerRun] = (ContainerRun(),), *,
        job_reason: str = "BackoffLimitExceeded",
        job_message: str = "Job has reached the specified backoff limit",
        labels: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A Job whose one pod failed as `runs` describe; returns (job, pod) as last written."""
        job = await self.create(f"/apis/batch/v1/namespaces/{namespace}/jobs",
                                job_body(namespace, name, runs, labels=labels))
        return await self.finish_job(namespace, name, runs, succeeded=False,
                                     job_reason=job_reason, job_message=job_message, job=job)

    async def finish_job(
        self, namespace: str, name: str, runs: Sequence[ContainerRun] = (), *, succeeded: bool,
        job_reason: str = "BackoffLimitExceeded",
        job_message: str = "Job has reached the specified backoff limit",
        job: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Run an existing Job (e.g. one the operator created) to success or failure."""
        job = job or await self.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        if not runs:
            runs = tuple(ContainerRun(name=c.get("name", "main"), exit_code=0 if succeeded else 1,
                                      reason="Completed" if succeeded else "Error")
                         for c in job["spec"]["template"]["spec"].get("containers", []))
        pod = await self.pod(namespace, f"{name}-{job['metadata']['uid'][:5]}", runs, owner=job)
        cond_type = "Complete" if succeeded else "Failed"
        conditions = [{"type": cond_type, "status": "True", "lastTransitionTime": _ts(),
                       "lastProbeTime": _ts()}]
        if not succeeded:
            conditions[0].update(reason=job_reason, message=job_message)
        status: dict[str, Any] = {"startTime": _ts(-30), "conditions": conditions,
                                  "succeeded" if succeeded else "failed": 1}
        if succeeded:
            status["completionTime"] = _ts()
        job = await self.patch_status(f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}", status)
        return job, pod

    async def pod(
        self, namespace: str, name: str, runs: Sequence[ContainerRun], *,
        owner: Mapping[str, Any] | None = None, phase: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """A pod whose containers ended as `runs` say; logs are preset on the emulator."""
        body = pod_body(namespace, name, runs, owner=owner)
        body["metadata"]["labels"].update(labels or {})
        await self.create(f"/api/v1/namespaces/{namespace}/pods", body)
        for run in runs:
            if run.log is not None:
                text = run.log.encode() if isinstance(run.log, str) else run.log
                self.emu.logs[(namespace, name, run.name, run.restarts > 0)] = LogSource(text)
        ok = all(r.exit_code == 0 for r in runs)
        waiting = any(r.exit_code is None for r in runs)
        phase = phase or ("Succeeded" if ok else "Pending" if waiting else "Failed")
        status = {"phase": phase, "startTime": _ts(-30),
                  "initContainerStatuses": [_cstatus(r) for r in runs if r.init],
                  "containerStatuses": [_cstatus(r) for r in runs if not r.init]}
        return await self.patch_status(f"/api/v1/namespaces/{namespace}/pods/{name}", status)

    async def event(self, namespace: str, obj: Mapping[str, Any], reason: str, message: str,
                    type_: str = "Warning") -> dict[str, Any]:
        meta = obj["metadata"]
        return await self.create(f"/api/v1/namespaces/{namespace}/events", {
            "metadata": {"generateName": f"{meta['name']}."},
            "involvedObject": {"kind": obj.get("kind"), "name": meta["name"],
                               "namespace": namespace, "uid": meta.get("uid"),
                               "apiVersion": obj.get("apiVersion")},
            "reason": reason, "message": message, "type": type_, "count": 1,
            "firstTimestamp": _ts(), "lastTimestamp": _ts(),
            "source": {"component": "kubelet"},
        })


def _cstatus(run: ContainerRun) -> dict[str, Any]:
    status: dict[str, Any] = {"name": run.name, "image": run.image, "imageID": "",
                              "ready": False, "restartCount": run.restarts,
                              "state": run.state()}
    if run.restarts:
        status["lastState"] = {"terminated": {"exitCode": run.exit_code or 1,
                                              "reason": run.reason, "finishedAt": _ts(-5)}}
    return status


def _container(run: ContainerRun) -> dict[str, Any]:
    c: dict[str, Any] = {"name": run.name, "image": run.image,
                         "command": ["sh", "-c", "npm ci && npm run build"]}
    if run.memory_limit:
        c["resources"] = {"limits": {"memory": run.memory_limit},
                          "requests": {"memory": run.memory_limit}}
    return c


def _template(runs: Sequence[ContainerRun]) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": "Never",
                            "containers": [_container(r) for r in runs if not r.init]}
    inits = [_container(r) for r in runs if r.init]
    if inits:
        spec["initContainers"] = inits
    return spec


def job_body(namespace: str, name: str, runs: Sequence[ContainerRun], *,
             labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
        "spec": {"backoffLimit": 0,
                 "template": {"metadata": {"labels": {"app": name}}, "spec": _template(runs)}},
    }


def pod_body(namespace: str, name: str, runs: Sequence[ContainerRun], *,
             owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {}}
    if owner is not None:
        o = owner["metadata"]
        meta["labels"] = {"job-name": o["name"], "batch.kubernetes.io/job-name": o["name"],
                          "controller-uid": o["uid"],
                          "batch.kubernetes.io/controller-uid": o["uid"]}
        meta["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": o["name"],
                                    "uid": o["uid"], "controller": True,
                                    "blockOwnerDeletion": True}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": _template(runs)}
