"""Validation of paths from logs: they must lie inside a PersistentVolumeClaim the pod mounted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

MAX_PATH_LENGTH = 1024
MAX_COMPONENT_LENGTH = 255
# Plain ASCII only: anything else (fullwidth solidus, lookalike dots, bidi controls, zero-width
# characters) could make a path look like one thing and mean another.
_COMPONENT = re.compile(r"^[A-Za-z0-9._+@=,-]+$")
MOUNT_ROOT = "/mnt/target"


class PathRefused(ValueError):
    """A path that must not be acted on; the message says why in one line."""


@dataclass(frozen=True)
class ClaimPath:
    """A validated path inside a claim: which claim, and where it lies relative to its root."""

    claim: str
    mount_path: str
    relative: str  # inside the claim (includes the mount's subPath), never empty for actions

    @property
    def in_job(self) -> str:
        """Where the path is inside a remediation Job that mounts the claim at MOUNT_ROOT."""
        return f"{MOUNT_ROOT}/{self.relative}" if self.relative else MOUNT_ROOT


def split_path(path: object) -> list[str]:
    """The components of an absolute path, refusing anything that could escape or be misread."""
    if not isinstance(path, str):
        raise PathRefused("path is not a string")
    if not path:
        raise PathRefused("path is empty")
    if len(path) > MAX_PATH_LENGTH:
        raise PathRefused(f"path longer than {MAX_PATH_LENGTH} characters")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in path):
        raise PathRefused("path contains control characters (NUL, newline, ...)")
    if not path.isascii():
        raise PathRefused("path contains non-ASCII characters")
    if not path.startswith("/"):
        raise PathRefused("path is not absolute")
    parts = [part for part in path.split("/") if part]
    for part in parts:
        if part in (".", ".."):
            raise PathRefused("path contains '.' or '..' components")
        if len(part) > MAX_COMPONENT_LENGTH:
            raise PathRefused(f"a path component is longer than {MAX_COMPONENT_LENGTH}")
        if not _COMPONENT.match(part):
            raise PathRefused("path contains characters outside [A-Za-z0-9._+@=,-]")
    return parts


def _claim_volumes(pod_spec: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for volume in pod_spec.get("volumes") or ():
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if isinstance(claim, str) and claim and isinstance(volume.get("name"), str):
            out[volume["name"]] = claim
    return out


def _containers(pod_spec: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield from pod_spec.get("initContainers") or ()
    yield from pod_spec.get("containers") or ()


def locate_in_claim(path: object, pod_spec: Mapping[str, Any], container: str | None) -> ClaimPath:
    """The claim mount holding path in the container (deepest mount wins), or PathRefused."""
    parts = split_path(path)
    claims = _claim_volumes(pod_spec)
    best: tuple[int, ClaimPath] | None = None
    for spec in _containers(pod_spec):
        if container is not None and spec.get("name") != container:
            continue
        for mount in spec.get("volumeMounts") or ():
            claim = claims.get(mount.get("name", ""))
            if claim is None or mount.get("subPathExpr"):
                continue  # a subPathExpr depends on the pod's env; we cannot place it safely
            try:
                mount_parts = split_path(mount.get("mountPath"))
                sub_parts = split_path("/" + mount["subPath"]) if mount.get("subPath") else []
            except PathRefused:
                continue  # an odd mount is never a place we write to
            if parts[: len(mount_parts)] != mount_parts:
                continue
            relative = "/".join(sub_parts + parts[len(mount_parts) :])
            found = ClaimPath(claim, "/" + "/".join(mount_parts), relative)
            if best is None or len(mount_parts) > best[0]:
                best = (len(mount_parts), found)
    if best is None:
        raise PathRefused("path is not inside a PersistentVolumeClaim mounted by the failed pod")
    return best[1]
