"""`pipeline-recovery classify`: offline diagnosis of one log file (and a Pod or Job)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import IO, Any

import yaml

from pipeline_recovery.classifier import Classifier, LogScan
from pipeline_recovery.model import Diagnosis, Evidence
from pipeline_recovery.redaction import redact

CHUNK = 1 << 20


class InputError(Exception):
    """Unreadable input; the message is the one line the user sees."""


def _parse_status(raw: bytes, path: str) -> Any:
    # `kubectl get -o json` or `-o yaml`: JSON first (its errors are the precise ones).
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        json_error = exc
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise InputError(f"status file {path} is not valid JSON or YAML: {json_error}") from None
    return data


def _read_status(path: str) -> Mapping[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = _parse_status(handle.read(16 * 1024 * 1024), path)
    except OSError as exc:
        raise InputError(f"cannot read status file {path}: {exc.strerror or exc}") from None
    if isinstance(data, dict) and data.get("kind") == "List":
        # `kubectl get pods -o json` with several: the first failed one, else the first.
        items = [i for i in data.get("items") or [] if isinstance(i, dict)]
        failed = [i for i in items if (i.get("status") or {}).get("phase") == "Failed"]
        chosen = failed or items
        data = chosen[0] if chosen else None
    if not isinstance(data, dict) or not isinstance(data.get("status", {}), dict):
        raise InputError(f"status file {path} is not a Pod or Job object")
    return data


def _scan(clf: Classifier, path: str) -> LogScan:
    stream = clf.open_stream(source="log")
    handle: IO[bytes]
    try:
        handle = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"cannot read log file {path}: {exc.strerror or exc}") from None
    try:
        while chunk := handle.read(CHUNK):
            stream.feed(chunk)
    except OSError as exc:
        raise InputError(f"cannot read log file {path}: {exc.strerror or exc}") from None
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()
    return stream.finish()


def _evidence_json(ev: Evidence | None, redact: Callable[[str], str]) -> dict[str, Any] | None:
    if ev is None:
        return None
    return {
        "source": ev.source, "container": ev.container, "line": ev.line, "text": redact(ev.text),
        "patternId": ev.pattern_id, "captures": {k: redact(v) for k, v in ev.captures.items()},
    }


def diagnosis_json(diag: Diagnosis, engine: str, redact: Callable[[str], str]) -> dict[str, Any]:
    """The JSON shape of a diagnosis (status field names of the CRD)."""
    return {
        "category": diag.category, "severity": diag.severity, "confidence": diag.confidence,
        "transient": diag.transient, "autoFixable": diag.auto_fixable,
        "rootCause": redact(diag.root_cause), "solution": redact(diag.solution),
        "evidence": _evidence_json(diag.evidence, redact), "fingerprint": diag.fingerprint,
        "engine": engine, "source": diag.source,
        "signals": [
            {"category": s.category, "patternId": s.rule_id, "priority": s.priority,
             "source": s.evidence.source, "line": s.evidence.line}
            for s in diag.signals[:10]
        ],
    }


def _human(diag: Diagnosis, scan: LogScan, engine: str, redact: Callable[[str], str]) -> str:
    lines = [
        f"category:    {diag.category}  (severity {diag.severity}, confidence "
        f"{diag.confidence:.2f}, {'transient' if diag.transient else 'not transient'}"
        f"{', auto-fixable' if diag.auto_fixable else ''})",
        f"root cause:  {redact(diag.root_cause)}",
    ]
    ev = diag.evidence
    if ev is not None:
        where = f"line {ev.line}" if ev.line else ev.source
        lines.append(f"evidence:    {where}: {redact(ev.text)[:200]}")
        lines.append(f"rule:        {ev.pattern_id}"
                     + (f"  {dict(ev.captures)}" if ev.captures else ""))
    lines.append(f"solution:    {redact(diag.solution)}")
    lines.append(f"fingerprint: {diag.fingerprint}  ({scan.lines} lines, "
                 f"{scan.bytes_scanned} bytes, engine {engine})")
    return "\n".join(lines)


def _ai_branch(diag: Diagnosis, scans: Sequence[LogScan],
               status: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The LLM consultation, the operator's path (imported only when --ai asks for it)."""
    from pipeline_recovery.llm.cli import analyse_for_cli

    return analyse_for_cli(diagnosis=diag, scans=scans, status=status)


def run_classify(args: argparse.Namespace) -> int:
    """Entry point of `classify`; returns the exit code, never raises on bad input."""
    try:
        status = _read_status(args.status) if args.status else None
        clf = Classifier.load_default()
        scan = _scan(clf, args.log)
    except InputError as exc:
        print(f"pipeline-recovery classify: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bad extra pattern file or setting: still one line
        print(f"pipeline-recovery classify: {exc}", file=sys.stderr)
        return 2
    diag = clf.diagnose([scan], status=status)
    ai = _ai_branch(diag, [scan], status) if getattr(args, "ai", False) else None
    if args.json:
        out = diagnosis_json(diag, clf.engine_name, redact)
        if ai is not None:
            out["ai"] = ai
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(_human(diag, scan, clf.engine_name, redact))
        if ai is not None:
            print("ai:          " + json.dumps(ai, ensure_ascii=False))
    return 0
