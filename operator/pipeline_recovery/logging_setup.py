"""Operator log configuration: plain text or one JSON object per line, with incident context."""

from __future__ import annotations

import contextlib
import contextvars
import datetime
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TextIO

from pipeline_recovery.settings import Settings

INCIDENT_KIND: Final = "PipelineRecovery"
TEXT_FORMAT: Final = "[%(asctime)s] %(name)-20.20s [%(levelname)-8.8s] %(message)s"

# LogRecord attributes every record has; anything else came in through `extra` and is kept.
_STANDARD_ATTRS: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__
) | {"message", "asctime", "taskName"}
# kopf's own extras: k8s_ref is rendered as "object", the rest is internal plumbing.
_KOPF_ATTRS: Final = frozenset({"k8s_ref", "k8s_skip", "settings"})


@dataclass(frozen=True)
class IncidentContext:
    """What the current asyncio task is working on; rendered onto each log line."""

    name: str | None = None
    namespace: str | None = None
    category: str | None = None


# Each kopf handler runs in its own task with a copied context, so binding here never leaks
# from one incident's handler into another's.
_CURRENT: contextvars.ContextVar[IncidentContext | None] = contextvars.ContextVar(
    "pipeline_recovery_incident", default=None
)
_NOTHING: Final = IncidentContext()


def bind_incident(
    name: str | None = None, *, namespace: str | None = None, category: str | None = None
) -> None:
    """Set (or refine) the PipelineRecovery name/namespace/category for this task's log lines."""
    ctx = _CURRENT.get() or _NOTHING
    changes = {
        key: value
        for key, value in (("name", name), ("namespace", namespace), ("category", category))
        if value is not None
    }
    _CURRENT.set(replace(ctx, **changes))


@contextlib.contextmanager
def incident_context(
    name: str | None = None, *, namespace: str | None = None, category: str | None = None
) -> Iterator[None]:
    """Bind the incident for the duration of a block, restoring the previous binding after."""
    token = _CURRENT.set(IncidentContext(name=name, namespace=namespace, category=category))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def current_incident() -> IncidentContext:
    """The incident bound to the running task (all fields None when nothing is bound)."""
    return _CURRENT.get() or _NOTHING


def _incident_fields(record: logging.LogRecord) -> dict[str, str]:
    """PipelineRecovery name/namespace/category from the record's extras, kopf's ref, or context."""
    ctx = _CURRENT.get() or _NOTHING
    ref = getattr(record, "k8s_ref", None)
    ref = ref if isinstance(ref, Mapping) else {}
    name = getattr(record, "pipelinerecovery", None) or ctx.name
    namespace = ctx.namespace
    if name is None and ref.get("kind") == INCIDENT_KIND:
        name, namespace = ref.get("name"), ref.get("namespace")
    category = getattr(record, "category", None) or ctx.category
    out: dict[str, str] = {}
    if name:
        out["pipelinerecovery"] = str(name)
    if namespace or ref.get("namespace"):
        out["namespace"] = str(namespace or ref.get("namespace"))
    if category:
        out["category"] = str(category)
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, incident fields, kopf's object."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_incident_fields(record))
        ref = getattr(record, "k8s_ref", None)
        if isinstance(ref, Mapping):
            entry["object"] = {k: v for k, v in ref.items() if k != "uid" and v is not None}
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in _KOPF_ATTRS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: extras may hold datetimes or enums; a log line must never fail to render.
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """kopf-like text lines, prefixed with [namespace/name] and the category when known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        fields = _incident_fields(record)
        ref = getattr(record, "k8s_ref", None)
        name = fields.get("pipelinerecovery") or (
            ref.get("name") if isinstance(ref, Mapping) else None
        )
        if name:
            where = f"{fields['namespace']}/{name}" if "namespace" in fields else str(name)
            tag = f" category={fields['category']}" if "category" in fields else ""
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"[{where}{tag}] {record.getMessage()}"
            record.args = None
        return super().format(record)


class _OperatorStreamHandler(logging.StreamHandler[TextIO]):
    """Marker type so re-configuring replaces our handler instead of stacking another."""


def make_formatter(log_format: str) -> logging.Formatter:
    """The formatter for a `log_format` setting value ("text" or "json")."""
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return TextFormatter()
    raise ValueError(f"unsupported log format {log_format!r} (expected text or json)")


def configure_logging(
    settings: Settings, *, stream: TextIO | None = None, debug: bool = False
) -> None:
    """Install one root handler per settings.log_format/log_level, replacing kopf's own."""
    handler = _OperatorStreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(settings.log_format))
    root = logging.getLogger()
    # kopf.configure() installs its own stream handler; two handlers would print every line twice.
    root.handlers[:] = [
        h
        for h in root.handlers
        if not isinstance(h, _OperatorStreamHandler) and type(h).__name__ != "_KopfStreamHandler"
    ]
    root.addHandler(handler)
    root.setLevel("DEBUG" if debug else settings.log_level)
    # asyncio's debug chatter is noise unless debugging the operator itself.
    logging.getLogger("asyncio").setLevel(logging.DEBUG if debug else logging.WARNING)
