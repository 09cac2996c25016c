"""JSON and text log lines carry the PipelineRecovery name and category."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from pipeline_recovery import logging_setup
from pipeline_recovery.logging_setup import (
    JsonFormatter,
    TextFormatter,
    bind_incident,
    configure_logging,
    current_incident,
    incident_context,
)
from pipeline_recovery.settings import Settings


def _record(msg: str = "diagnosed %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("pipeline_recovery.flow", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _kopf_ref(kind: str, name: str, namespace: str = "ci") -> dict[str, object]:
    return {
        "apiVersion": "pipelinerecovery.dev/v1alpha1",
        "kind": kind,
        "name": name,
        "uid": "u-1",
        "namespace": namespace,
    }


def test_json_line_has_name_and_category_from_the_bound_incident() -> None:
    with incident_context("build-42-abc", namespace="ci", category="network"):
        line = JsonFormatter().format(_record("diagnosed %s", "ok"))
    entry = json.loads(line)
    assert entry["pipelinerecovery"] == "build-42-abc"
    assert entry["namespace"] == "ci"
    assert entry["category"] == "network"
    assert entry["message"] == "diagnosed ok"
    assert entry["level"] == "info"
    assert entry["logger"] == "pipeline_recovery.flow"
    assert "\n" not in line


def test_json_line_takes_the_name_from_kopfs_object_reference() -> None:
    record = _record(
        "handler succeeded", k8s_ref=_kopf_ref("PipelineRecovery", "prec-1"), k8s_skip=False
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["pipelinerecovery"] == "prec-1"
    assert entry["namespace"] == "ci"
    assert entry["object"]["kind"] == "PipelineRecovery"
    assert "uid" not in entry["object"]
    assert "k8s_skip" not in entry and "k8s_ref" not in entry and "settings" not in entry


def test_a_job_reference_does_not_pose_as_the_pipelinerecovery_name() -> None:
    record = _record("saw failure", k8s_ref=_kopf_ref("Job", "build-42"))
    entry = json.loads(JsonFormatter().format(record))
    assert "pipelinerecovery" not in entry
    assert entry["object"]["name"] == "build-42"


def test_category_passed_as_extra_wins_and_other_extras_are_kept() -> None:
    record = _record("x", category="disk-full", pipelinerecovery="p-2", attempt=2)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["category"] == "disk-full"
    assert entry["pipelinerecovery"] == "p-2"
    assert entry["attempt"] == 2


def test_exceptions_are_rendered_inside_the_json_object() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "error"
    assert "RuntimeError: boom" in entry["exception"]


def test_unserialisable_extras_do_not_break_the_line() -> None:
    entry = json.loads(JsonFormatter().format(_record("x", when=object())))
    assert entry["when"].startswith("<object object")


def test_text_line_is_prefixed_with_namespace_name_and_category() -> None:
    with incident_context("prec-3", namespace="ci", category="image-pull"):
        line = TextFormatter().format(_record("diagnosed %s", "ok"))
    assert "[ci/prec-3 category=image-pull] diagnosed ok" in line


def test_bind_refines_the_context_and_contexts_do_not_leak_between_tasks() -> None:
    async def handler(name: str, category: str) -> tuple[str | None, str | None]:
        bind_incident(name, namespace="ci")
        await asyncio.sleep(0)
        bind_incident(category=category)
        await asyncio.sleep(0)
        ctx = current_incident()
        return ctx.name, ctx.category

    async def main() -> list[tuple[str | None, str | None]]:
        return list(await asyncio.gather(handler("a", "network"), handler("b", "auth")))

    assert asyncio.run(main()) == [("a", "network"), ("b", "auth")]
    assert current_incident().name is None


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    yield root
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_configure_logging_json_writes_one_object_per_line(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream)
    configure_logging(Settings(log_format="json", log_level="INFO"), stream=stream)  # idempotent
    with incident_context("prec-9", namespace="ci", category="auth"):
        logging.getLogger("pipeline_recovery.test").info("one")
        logging.getLogger("kopf.objects").debug("hidden below INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["category"] == "auth"


def test_configure_logging_text_and_level(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    configure_logging(Settings(log_format="text", log_level="WARNING"), stream=stream)
    logging.getLogger("pipeline_recovery.test").info("quiet")
    logging.getLogger("pipeline_recovery.test").warning("loud")
    assert "loud" in stream.getvalue() and "quiet" not in stream.getvalue()
    assert root_logger.level == logging.WARNING


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unsupported log format"):
        logging_setup.make_formatter("xml")
