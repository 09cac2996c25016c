"""The one place that talks to the Kubernetes API: an async httpx client with retries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypedDict, cast
from urllib.parse import quote

import httpx

from pipeline_recovery import __version__, labels

logger = logging.getLogger(__name__)

USER_AGENT = f"pipeline-recovery/{__version__}"
RETRYABLE = frozenset({409, 429, 500, 502, 503, 504})


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    creationTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]
    ownerReferences: list[dict[str, Any]]


class KubeObject(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: dict[str, Any]


class Event(TypedDict, total=False):
    metadata: ObjectMeta
    involvedObject: dict[str, Any]
    reason: str
    message: str
    type: str
    count: int
    firstTimestamp: str
    lastTimestamp: str


class KubeError(Exception):
    """An API call failed; `status` is the HTTP code (0 when the server was unreachable)."""

    def __init__(self, status: int, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: {status} {message}".strip())
        self.status = status
        self.message = message


class NotFound(KubeError):
    """404: the object (or the endpoint) does not exist."""


class Forbidden(KubeError):
    """403: RBAC refused the call."""


class Conflict(KubeError):
    """409: already exists, or a resourceVersion precondition failed."""


class BadRequest(KubeError):
    """400: e.g. logs of a container that never ran or whose previous instance is gone."""


class Unavailable(KubeError):
    """429/5xx or connection failures that outlasted every retry."""


def _error_for(status: int) -> type[KubeError]:
    return {400: BadRequest, 403: Forbidden, 404: NotFound, 409: Conflict}.get(
        status, Unavailable if status == 0 or status == 429 or status >= 500 else KubeError
    )


class KubeClient:
    """Typed calls for the resources the operator uses (see manifests/rbac/role.yaml)."""

    def __init__(
        self, server: str, *, headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = True, timeout: float = 30.0,
        retries: int = 5, backoff: float = 0.2, max_backoff: float = 10.0,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=server.rstrip("/"), verify=verify,
            headers={"User-Agent": USER_AGENT, **dict(headers or {})},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff

    @classmethod
    def from_connection_info(cls, info: Any, **kwargs: Any) -> KubeClient:
        """Build from kopf's ConnectionInfo (server, CA, token or client cert, insecure)."""
        verify: ssl.SSLContext | bool = True
        if str(info.server).startswith("https"):
            verify = False if info.insecure else info.as_ssl_context()
        return cls(info.server, headers=info.as_http_headers(), verify=verify, **kwargs)

    async def aclose(self) -> None:
        await self._client.aclose()

    # -- transport ------------------------------------------------------------------------------
    async def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, patch: bool = False, retry_conflict: bool = True,
                    stream: bool = False) -> httpx.Response:
        headers = {"Content-Type": "application/merge-patch+json"} if patch else {}
        attempt = 0
        while True:
            try:
                request = self._client.build_request(method, path, params=params, json=body,
                                                     headers=headers)
                resp = await self._client.send(request, stream=stream)
            except httpx.TransportError as exc:
                status, message, retry_after = 0, f"{type(exc).__name__}: {exc}", None
            else:
                if resp.status_code < 400:
                    return resp
                if stream:
                    await resp.aread()
                status, message = resp.status_code, _message(resp)
                retry_after = resp.headers.get("Retry-After")
            retryable = status == 0 or (status in RETRYABLE and (status != 409 or retry_conflict))
            if not retryable or attempt >= self.retries:
                raise _error_for(status)(status, message, method=method, path=path)
            attempt += 1
            delay = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
            delay *= 0.5 + random.random() / 2  # noqa: S311 - jitter, not crypto
            with contextlib.suppress(ValueError, TypeError):
                delay = max(delay, min(self.max_backoff, float(retry_after)))  # type: ignore[arg-type]
            logger.debug("retrying %s %s after %s (%.2fs)", method, path, status, delay)
            await asyncio.sleep(delay)

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        resp = await self._send(method, path, **kwargs)
        return cast(dict[str, Any], resp.json())

    # -- workloads (read only) -----------------------------------------------------------------
    async def get_job(self, namespace: str, name: str) -> KubeObject:
        return cast(KubeObject, await self._json("GET", _path("batch/v1", "jobs", namespace, name)))

    async def get_pod(self, namespace: str, name: str) -> KubeObject:
        return cast(KubeObject, await self._json("GET", _path("v1", "pods", namespace, name)))

    async def list_jobs(self, namespace: str, label_selector: str) -> list[KubeObject]:
        data = await self._json("GET", _path("batch/v1", "jobs", namespace),
                                params={"labelSelector": label_selector})
        return [cast(KubeObject, i) for i in data.get("items", [])]

    async def list_job_pods(self, namespace: str, job_name: str, job_uid: str | None
                            ) -> list[KubeObject]:
        """Pods of a Job; filtered here too, since not every server applies the selector."""
        selector = f"{labels.JOB_NAME_LABELS[0]}={job_name}"
        data = await self._json("GET", _path("v1", "pods", namespace),
                                params={"labelSelector": selector})
        pods = [cast(KubeObject, i) for i in data.get("items", [])]
        if not pods:  # clusters older than 1.27 only set the short label
            data = await self._json("GET", _path("v1", "pods", namespace),
                                    params={"labelSelector": f"job-name={job_name}"})
            pods = [cast(KubeObject, i) for i in data.get("items", [])]
        return [p for p in pods if _owned_by(p, job_name, job_uid)]

    async def stream_pod_log(self, namespace: str, pod: str, container: str, *,
                             previous: bool = False, limit_bytes: int | None = None,
                             tail_lines: int | None = None) -> AsyncIterator[bytes]:
        """The container's log as raw byte chunks (bounded by the server via the params)."""
        params: dict[str, Any] = {"container": container}
        if previous:
            params["previous"] = "true"
        if limit_bytes:
            params["limitBytes"] = limit_bytes
        if tail_lines:
            params["tailLines"] = tail_lines
        resp = await self._send("GET", _path("v1", "pods", namespace, pod, "log"),
                                params=params, stream=True)
        try:
            async for chunk in resp.aiter_bytes():
                yield chunk
        finally:
            await resp.aclose()

    async def list_events(self, namespace: str, kind: str, name: str, uid: str | None = None
                          ) -> list[Event]:
        """Events about one object (field selector, and filtered here as well)."""
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        data = await self._json("GET", _path("v1", "events", namespace),
                                params={"fieldSelector": selector})
        out = []
        for item in data.get("items", []):
            inv = item.get("involvedObject") or {}
            if inv.get("kind") == kind and inv.get("name") == name and (
                not uid or not inv.get("uid") or inv.get("uid") == uid
            ):
                out.append(cast(Event, item))
        return out

    async def create_event(self, namespace: str, body: Mapping[str, Any]) -> Event:
        return cast(Event, await self._json("POST", _path("v1", "events", namespace),
                                            body=dict(body)))

    # -- remediation Jobs ----------------------------------------------------------------------
    async def create_job(self, namespace: str, body: Mapping[str, Any]) -> KubeObject:
        """Create a Job; Conflict when one of that name exists (deterministic names)."""
        return cast(KubeObject, await self._json(
            "POST", _path("batch/v1", "jobs", namespace), body=dict(body), retry_conflict=False))

    # -- PipelineRecovery ----------------------------------------------------------------------
    async def create_recovery(self, namespace: str, body: Mapping[str, Any]) -> KubeObject:
        """Create; raises Conflict when it already exists (the idempotency key is the name)."""
        return cast(KubeObject, await self._json(
            "POST", _path(labels.API_VERSION, labels.PLURAL, namespace), body=dict(body),
            retry_conflict=False))

    async def get_recovery(self, namespace: str, name: str) -> KubeObject:
        return cast(KubeObject, await self._json(
            "GET", _path(labels.API_VERSION, labels.PLURAL, namespace, name)))

    async def list_recoveries(self, namespace: str | None = None,
                              label_selector: str | None = None) -> list[KubeObject]:
        params = {"labelSelector": label_selector} if label_selector else None
        data = await self._json("GET", _path(labels.API_VERSION, labels.PLURAL, namespace),
                                params=params)
        return [cast(KubeObject, i) for i in data.get("items", [])]

    async def patch_recovery(self, namespace: str, name: str, patch: Mapping[str, Any]
                             ) -> KubeObject:
        return cast(KubeObject, await self._json(
            "PATCH", _path(labels.API_VERSION, labels.PLURAL, namespace, name),
            body=dict(patch), patch=True))

    async def patch_recovery_status(self, namespace: str, name: str,
                                    status: Mapping[str, Any]) -> KubeObject:
        """Merge-patch the status subresource (lists such as conditions are replaced whole)."""
        return cast(KubeObject, await self._json(
            "PATCH", _path(labels.API_VERSION, labels.PLURAL, namespace, name, "status"),
            body={"status": dict(status)}, patch=True))


def _path(api_version: str, plural: str, namespace: str | None = None, name: str | None = None,
          subresource: str | None = None) -> str:
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts += ["namespaces", quote(namespace, safe="")]
    parts.append(plural)
    if name:
        parts.append(quote(name, safe=""))
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def _owned_by(pod: KubeObject, job_name: str, job_uid: str | None) -> bool:
    meta = pod.get("metadata", {})
    for ref in meta.get("ownerReferences", []) or []:
        if ref.get("kind") == "Job" and ref.get("name") == job_name:
            return not job_uid or ref.get("uid") == job_uid
    pod_labels = meta.get("labels", {}) or {}
    if not any(pod_labels.get(k) == job_name for k in labels.JOB_NAME_LABELS):
        return False
    uids = {pod_labels.get(k) for k in labels.CONTROLLER_UID_LABELS} - {None}
    return not job_uid or not uids or job_uid in uids


def _message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or "")[:500]
    return str(data)[:200]
