"""Planning a raise of a container's memory or storage, or of a Job's deadline (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .quantities import QuantityError, parse_quantity, scale_bytes


class PlanError(ValueError):
    """The action cannot be shaped for this Job (no such container, already at the cap ...)."""


def _containers(pod_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [*(pod_spec.get("initContainers") or ()), *(pod_spec.get("containers") or ())]


def find_container(pod_spec: Mapping[str, Any], name: str | None) -> dict[str, Any]:
    """The named container (init containers included); the only one when name is unknown."""
    containers = _containers(pod_spec)
    if name:
        for container in containers:
            if container.get("name") == name:
                return container
        raise PlanError(f"container {name!r} is not in the Job's pod template")
    regular = list(pod_spec.get("containers") or ())
    if len(regular) == 1:
        return regular[0]  # type: ignore[no-any-return]
    raise PlanError("cannot tell which container failed")


@dataclass(frozen=True)
class ResourceChange:
    """Old and new values of one resource of one container (None: not set)."""

    container: str
    resource: str
    old_request: str | None
    new_request: str | None
    old_limit: str | None
    new_limit: str | None
    capped: bool

    def as_parameters(self) -> dict[str, str]:
        out = {"container": self.container, "resource": self.resource}
        for key, value in (
            ("oldRequest", self.old_request),
            ("newRequest", self.new_request),
            ("oldLimit", self.old_limit),
            ("newLimit", self.new_limit),
        ):
            if value is not None:
                out[key] = value
        return out


def plan_resource_raise(
    pod_spec: Mapping[str, Any], container: str | None, resource: str, factor: float, cap: str
) -> ResourceChange:
    """New request and limit of a resource raised by factor up to cap; PlanError if impossible."""
    spec = find_container(pod_spec, container)
    resources = spec.get("resources") or {}
    old_request = (resources.get("requests") or {}).get(resource)
    old_limit = (resources.get("limits") or {}).get(resource)
    if old_request is None and old_limit is None:
        raise PlanError(f"container {spec.get('name')!r} sets no {resource} to raise")
    try:
        ceiling = parse_quantity(cap)
        if (
            max(parse_quantity(str(q)) for q in (old_request, old_limit) if q is not None)
            >= ceiling
        ):
            raise PlanError(
                f"{resource} of container {spec.get('name')!r} is already at the cap {cap}"
            )
        new_request, capped_r = (
            scale_bytes(str(old_request), factor, cap) if old_request else (None, False)
        )
        new_limit, capped_l = (
            scale_bytes(str(old_limit), factor, cap) if old_limit else (None, False)
        )
    except QuantityError as exc:
        raise PlanError(f"{resource} of container {spec.get('name')!r}: {exc}") from None
    return ResourceChange(
        str(spec.get("name")),
        resource,
        None if old_request is None else str(old_request),
        new_request,
        None if old_limit is None else str(old_limit),
        new_limit,
        capped_r or capped_l,
    )


def plan_deadline_raise(job: Mapping[str, Any], factor: float, cap: int) -> dict[str, str]:
    """Longer activeDeadlineSeconds for the Job (or its pod template); PlanError if none/capped."""
    spec = job.get("spec") or {}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    for where, holder in (("job", spec), ("pod", pod_spec)):
        old = holder.get("activeDeadlineSeconds")
        if isinstance(old, int) and not isinstance(old, bool) and old > 0:
            new = min(cap, int(old * factor + 0.999999))
            if new <= old:
                raise PlanError(f"activeDeadlineSeconds {old} is already at the cap {cap}")
            return {"field": where, "oldSeconds": str(old), "newSeconds": str(new)}
    raise PlanError("the Job sets no activeDeadlineSeconds to raise")


