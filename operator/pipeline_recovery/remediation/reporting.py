"""How the remediation steps report on an incident: its status (and tracked phase) and Events."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..runtime import Runtime


def key_of(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


async def write_status(
    rt: Runtime, rec: Mapping[str, Any], patch: Mapping[str, Any]
) -> dict[str, Any]:
    ns, name = key_of(rec)
    updated: dict[str, Any] = dict(await rt.kube.patch_recovery_status(ns, name, patch))
    rt.track_phase(
        str((rec.get("metadata") or {}).get("uid", "")),
        str((updated.get("status") or {}).get("phase") or "Pending"),
    )
    return updated


async def event(rt: Runtime, rec: Mapping[str, Any], reason: str, message: str) -> None:
    from ..flow import post_event  # flow imports the hooks that import this module

    await post_event(rt, rec, reason, message, None)
