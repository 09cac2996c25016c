"""KMock's Kubernetes emulator with the apiserver behaviour the demo, tests and bench rely on."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import itertools
import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import enums, parsing, rendering

from pipeline_recovery import labels

_NAMESPACES_PATH = re.compile(r"^/api/v1/namespaces(?:/(?P<name>[^/]+))?/?$")
_SELECTOR_TERM = re.compile(r"^\s*([^!=\s]+)\s*(==|=|!=)?\s*([^\s]*)\s*$")

_VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
# Resources served, with the subresources a real apiserver has for them.
RESOURCES: dict[str, kmock.ResourceInfo] = {
    "v1/pods": kmock.ResourceInfo(verbs=_VERBS, kind="Pod", namespaced=True,
                                  subresources={"status", "log"}),
    "v1/events": kmock.ResourceInfo(verbs=_VERBS, kind="Event", namespaced=True),
    "v1/namespaces": kmock.ResourceInfo(verbs=_VERBS, kind="Namespace", namespaced=False),
    "batch/v1/jobs": kmock.ResourceInfo(verbs=_VERBS, kind="Job", namespaced=True,
                                        subresources={"status"}),
    "events.k8s.io/v1/events": kmock.ResourceInfo(verbs=_VERBS, kind="Event", namespaced=True),
    "apiextensions.k8s.io/v1/customresourcedefinitions": kmock.ResourceInfo(
        verbs=_VERBS, kind="CustomResourceDefinition", namespaced=False, subresources={"status"}
    ),
    f"{labels.GROUP}/{labels.VERSION}/{labels.PLURAL}": kmock.ResourceInfo(
        verbs=_VERBS,
        kind=labels.KIND,
        singular="pipelinerecovery",
        shortnames={"prec"},
        namespaced=True,
        subresources={"status"},
    ),
}
# Resources whose status only changes through /status (CRDs with the subresource and builtins
# with controllers); a create keeps the status for builtins so that tests can stand in for the
# kubelet and the Job controller in one step, but a CRD's status is dropped as a real server does.
_STATUS_ON_CREATE_DROPPED = {(labels.GROUP, labels.PLURAL)}


@dataclass(frozen=True)
class JournalEntry:
    """One request the emulator served: what an RBAC rule must allow."""

    method: str
    group: str
    version: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None
    watch: bool = False
    user_agent: str = ""


@dataclass
class LogSource:
    """What the pod log endpoint returns for one container (previous=True: the restarted one)."""

    text: bytes = b""
    error: int | None = None  # 403 forbidden, 400 rotated / waiting, 404 gone
    reads: int = 0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def match_labels(selector: str, obj_labels: Mapping[str, str]) -> bool:
    """Equality-based label selector (a=b, a==b, a!=b, a, !a) as the apiserver applies it."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if term.startswith("!"):
            if term[1:] in obj_labels:
                return False
            continue
        m = _SELECTOR_TERM.match(term)
        if m is None:
            return False
        key, op, value = m.groups()
        if op is None:
            if key not in obj_labels:
                return False
        elif op == "!=":
            if obj_labels.get(key) == value:
                return False
        elif obj_labels.get(key) != value:
            return False
    return True


def _dig(obj: Mapping[str, Any], path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, Mapping) else None
    return cur


def match_fields(selector: str, obj: Mapping[str, Any]) -> bool:
    """Field selectors (involvedObject.name=x, metadata.name=y, ...) over the raw object."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        m = _SELECTOR_TERM.match(term)
        if m is None or m.group(2) is None:
            return False
        key, op, value = m.groups()
        actual = _dig(obj, key)
        actual_s = "" if actual is None else str(actual)
        if (op == "!=") == (actual_s == value):
            return False
    return True


class _BoundedRequestLog(kmock.RawHandler):
    """kmock matches each request by filtering its whole request log, so serving slows down
    linearly with every request ever served; the log is kept short (the journal records all)."""

    __slots__ = ()

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        requests: list[rendering.Request] = self._requests
        if len(requests) > 1:
            requests[:] = [request]  # matching is synchronous up to the first await
        return await super()._handle(request)


@attrs.define(kw_only=True)
class ClusterEmulator(kmock.KubernetesEmulator, _BoundedRequestLog):
    """KubernetesEmulator plus uid/resourceVersion/generation, /status, selectors, logs, journal."""

    journal: list[JournalEntry] = attrs.field(factory=list, init=False)
    logs: dict[tuple[str, str, str, bool], LogSource] = attrs.field(factory=dict, init=False)
    namespaces: set[str] = attrs.field(factory=lambda: {"default"}, init=False)
    # Status codes to return once for matching (method, path regex) requests: fault injection.
    faults: list[tuple[str, re.Pattern[str], int]] = attrs.field(factory=list, init=False)
    _rv: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1), init=False)
    _mutation_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for key, info in RESOURCES.items():
            self.resources[key] = info

    # -- HTTP entry: journal, fault injection, the namespaces endpoints kmock 0.8 misreads --------
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        self._record(raw_request)
        for i, (method, pattern, status) in enumerate(self.faults):
            if method == raw_request.method and pattern.search(raw_request.path_qs):
                del self.faults[i]
                return _status_response(status, "injected fault", headers={"Retry-After": "0"})
        m = _NAMESPACES_PATH.match(raw_request.path)
        if m is not None and raw_request.method == "GET":
            return await self._serve_namespaces(raw_request, m.group("name"))
        return await super().__call__(raw_request)

    def _record(self, raw: aiohttp.web.BaseRequest) -> None:
        path = raw.path
        m = _NAMESPACES_PATH.match(path)
        if m is not None:
            entry = JournalEntry(raw.method, "", "v1", "namespaces", None, None, m.group("name"),
                                 watch=raw.query.get("watch") == "true")
        else:
            p = parsing.parse_path(path)
            if p.group is None:
                return
            entry = JournalEntry(
                raw.method, p.group, p.version or "", p.plural or "", p.subresource,
                p.namespace, p.name, watch=raw.query.get("watch") == "true",
            )
        self.journal.append(dataclasses.replace(entry,
                                                user_agent=raw.headers.get("User-Agent", "")))

    async def _serve_namespaces(
        self, raw: aiohttp.web.BaseRequest, name: str | None
    ) -> aiohttp.web.StreamResponse:
        items = [_namespace(ns) for ns in sorted(self.namespaces)]
        if name is not None:
            if name not in self.namespaces:
                return _status_response(404, f'namespaces "{name}" not found')
            return aiohttp.web.json_response(_namespace(name))
        if raw.query.get("watch") != "true":
            body = {"kind": "NamespaceList", "apiVersion": "v1", "items": items,
                    "metadata": {"resourceVersion": str(self._current_rv())}}
            return aiohttp.web.json_response(body)
        response = aiohttp.web.StreamResponse()
        await response.prepare(raw)
        for item in items:
            await response.write(json.dumps({"type": "ADDED", "object": item}).encode() + b"\n")
        # Namespaces never change here: hold the stream until the server-side timeout.
        await asyncio.sleep(float(raw.query.get("timeoutSeconds", "600")))
        return response

    # -- object semantics --------------------------------------------------------------------
    def _current_rv(self) -> int:
        nxt = next(self._rv)
        self._rv = itertools.count(nxt)
        return nxt - 1

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if request.resource is not None and request.subresource == "log":
            return self._serve_log(request)
        if request.resource is None or request.action not in (
            enums.action.CREATE, enums.action.UPDATE, enums.action.DELETE,
        ):
            return await super()._handle(request)
        async with self._mutation_lock:
            if request.action == enums.action.CREATE:
                self._prepare_create(request)
            elif request.action == enums.action.UPDATE:
                if request.subresource not in (None, "status"):
                    return _status_response(405, f"subresource {request.subresource} not served")
                self._prepare_update(request)
            return await super()._handle(request)

    def _prepare_create(self, request: rendering.Request) -> None:
        assert request.resource is not None
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if request.namespace:
            meta["namespace"] = request.namespace
            self.namespaces.add(request.namespace)
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(next(self._rv))
        meta["generation"] = 1
        meta["creationTimestamp"] = _now()
        if (request.resource.group, request.resource.plural) in _STATUS_ON_CREATE_DROPPED:
            data.pop("status", None)

    def _prepare_update(self, request: rendering.Request) -> None:
        assert request.resource is not None
        data = request.data if isinstance(request.data, dict) else {}
        key = (request.resource, request.namespace, request.name)
        current = _stored(self, key)
        info = self.resources.get(request.resource)
        has_status = "status" in getattr(info, "subresources", set())
        if request.subresource == "status":
            for k in list(data):
                if k != "status":
                    del data[k]
        elif has_status:
            data.pop("status", None)
        meta = data.setdefault("metadata", {})
        meta.pop("uid", None)
        meta.pop("creationTimestamp", None)
        meta["resourceVersion"] = str(next(self._rv))
        if "spec" in data and current:
            merged = _merge(current.get("spec") or {}, data["spec"])
            if merged != (current.get("spec") or {}):
                meta["generation"] = int(current.get("metadata", {}).get("generation", 1)) + 1

    def _serve_log(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        ns, pod = request.namespace or "", request.name or ""
        stored = _stored(self, (request.resource, ns, pod))
        if not stored:
            return _status_response(404, f'pods "{pod}" not found')
        container = request.params.get("container") or _first_container(stored)
        previous = request.params.get("previous") == "true"
        source = self.logs.get((ns, pod, container, previous))
        if source is None:
            what = "previous terminated container" if previous else "container"
            return _status_response(400, f'{what} "{container}" in pod "{pod}" not found')
        source.reads += 1
        if source.error is not None:
            return _status_response(source.error, f"log of {pod}/{container} unavailable")
        text = source.text
        if "tailLines" in request.params:
            n = int(request.params["tailLines"])
            lines = text.splitlines(keepends=True)
            text = b"".join(lines[-n:]) if n > 0 else b""
        if "limitBytes" in request.params:
            text = text[: int(request.params["limitBytes"])]
        return aiohttp.web.Response(body=text, content_type="text/plain")

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        result = await super()._serve_list(request)
        assert isinstance(result, dict)
        result["items"] = [i for i in result["items"] if _selected(request, i)]
        result["metadata"] = {"resourceVersion": str(self._current_rv())}
        return result

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        async for event in super()._serve_watch(request):
            if isinstance(event, dict) and not _selected(request, event.get("object", {})):
                continue
            yield event


def _stored(emu: ClusterEmulator, key: tuple[Any, str | None, str | None]) -> dict[str, Any]:
    objects: Any = emu.objects
    if key not in objects or objects[key].deleted:
        return {}
    return dict(objects[key].raw)


def _selected(request: rendering.Request, obj: Mapping[str, Any]) -> bool:
    lsel = request.params.get("labelSelector")
    fsel = request.params.get("fieldSelector")
    obj_labels = (obj.get("metadata") or {}).get("labels") or {}
    if lsel and not match_labels(lsel, obj_labels):
        return False
    return not (fsel and not match_fields(fsel, obj))


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def _first_container(pod: Mapping[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    return str(containers[0].get("name", ""))


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": f"ns-{name}", "resourceVersion": "1"},
            "status": {"phase": "Active"}}


def _status_response(
    code: int, message: str, headers: Mapping[str, str] | None = None
) -> aiohttp.web.Response:
    reasons = {400: "BadRequest", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
               409: "AlreadyExists", 429: "TooManyRequests", 500: "InternalError",
               503: "ServiceUnavailable"}
    body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": message, "reason": reasons.get(code, "Unknown"), "code": code}
    return aiohttp.web.json_response(body, status=code, headers=dict(headers or {}))


@contextlib.asynccontextmanager
async def running_emulator(
    crd_path: Path | None = None,
) -> AsyncIterator[tuple[ClusterEmulator, str]]:
    """Start the emulator on a loopback port; yield it and its base URL."""
    async with ClusterEmulator() as emu, kmock.Server(emu) as server:
        if crd_path is not None:
            crd = yaml.safe_load(crd_path.read_text())
            emu.objects["apiextensions.k8s.io/v1/customresourcedefinitions", None,
                        crd["metadata"]["name"]] = crd
        yield emu, str(server.url).rstrip("/")


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> Path:
    """A kubeconfig pointing at the emulator (plain HTTP on loopback, no credentials)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {}}],
        "contexts": [{"name": "emulator",
                      "context": {"cluster": "emulator", "user": "emulator",
                                  "namespace": namespace}}],
    }
    path.write_text(yaml.safe_dump(config))
    return path
