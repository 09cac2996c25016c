"""The one place that talks to the Kubernetes API: an async aiohttp client with retries."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, cast
from urllib.parse import quote

import aiohttp
import yarl

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


@dataclass(frozen=True)
class _Answer:
    """A whole (non-streamed) response."""

    status: int
    body: bytes


def _error_for(status: int) -> type[KubeError]:
    return {400: BadRequest, 403: Forbidden, 404: NotFound, 409: Conflict}.get(
        status, Unavailable if status == 0 or status == 429 or status >= 500 else KubeError
    )


class KubeClient:
    """Typed calls for the resources the operator uses (see manifests/rbac/role.yaml).

    aiohttp rather than httpx: under a burst of incidents httpx's connection pool cost
    1-4 ms of CPU per request against aiohttp's ~0.1 ms (bench/bench_operator.py)."""

    def __init__(
        self, server: str, *, headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = True, timeout: float = 30.0,
        retries: int = 5, backoff: float = 0.2, max_backoff: float = 10.0,
        max_connections: int = 64,
    ) -> None:
        self._base = server.rstrip("/")
        self._headers = {"User-Agent": USER_AGENT, **dict(headers or {})}
        self._verify = verify
        self._timeout = aiohttp.ClientTimeout(total=None, connect=min(timeout, 10.0),
                                              sock_read=timeout)
        self._max_connections = max_connections
        # Made on first use: an aiohttp session belongs to the event loop that runs the calls.
        self._session: aiohttp.ClientSession | None = None
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
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._verify, limit=self._max_connections))
        return self._session

    # -- transport ------------------------------------------------------------------------------
    async def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                    body: Any = None, patch: bool = False, retry_conflict: bool = True,
                    stream: bool = False) -> Any:
        """An _Answer, or (stream=True) an open aiohttp response the caller must release."""
        content_type = "application/merge-patch+json" if patch else "application/json"
        headers = {"Content-Type": content_type} if body is not None else {}
        data = json.dumps(body).encode() if body is not None else None
        query = {k: str(v) for k, v in (params or {}).items()}
        url = yarl.URL(self._base + path, encoded=True)
        attempt = 0
        while True:
            retry_after: str | None = None
            try:
                resp = await self._client().request(method, url, params=query or None,
                                                    data=data, headers=headers)
                if resp.status < 400:
                    if stream:
                        return resp
                    async with resp:
                        return _Answer(resp.status, await resp.read())
                async with resp:
                    status, message = resp.status, _message(await resp.read())
                    retry_after = resp.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                status, message = 0, f"{type(exc).__name__}: {exc}"
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
        answer: _Answer = await self._send(method, path, **kwargs)
        return cast(dict[str, Any], json.loads(answer.body))

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
        resp: aiohttp.ClientResponse = await self._send(
            "GET", _path("v1", "pods", namespace, pod, "log"), params=params, stream=True)
        try:
            async for chunk in resp.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:  # cut off half-way: what came counts
            raise Unavailable(0, f"{type(exc).__name__}: {exc}", method="GET",
                              path=f"pods/{pod}/log") from exc
        finally:
            resp.release()

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


def _message(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace")[:200]
    if isinstance(data, dict):
        return str(data.get("message") or data.get("reason") or "")[:500]
    return str(data)[:200]
