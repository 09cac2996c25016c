"""Everything the operator writes, and every sample, validates against the CRD's own schema;
the printer columns resolve on real statuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from pipeline_recovery.status import DIAGNOSED_PHASES, PHASES
from pipeline_recovery.taxonomy import CATEGORIES

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "pipelinerecoveries.yaml").read_text())
VERSION = CRD["spec"]["versions"][0]
SCHEMA = VERSION["schema"]["openAPIV3Schema"]
SAMPLES = sorted((ROOT / "manifests" / "samples").glob("pipelinerecovery*.yaml"))


def to_json_schema(node: Any) -> Any:
    """Structural OpenAPI v3 → JSON Schema: drop the x-kubernetes-* extensions."""
    if isinstance(node, dict):
        return {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes")}
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    return node


VALIDATOR = jsonschema.Draft202012Validator(to_json_schema(SCHEMA),
                                            format_checker=jsonschema.FormatChecker())


def errors(obj: dict[str, Any]) -> list[str]:
    found = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
             for e in VALIDATOR.iter_errors(obj)]
    spec = obj.get("spec") or {}
    if "target" not in spec and "log" not in spec:  # the CEL rule on spec
        found.append("spec: spec.target or spec.log is required")
    return found


def walk_no_preserve(node: Any, path: str = "") -> list[str]:
    bad = []
    if isinstance(node, dict):
        if node.get("x-kubernetes-preserve-unknown-fields") and path != ".metadata":
            bad.append(path)
        if node.get("type") == "object" and "properties" not in node and \
                "additionalProperties" not in node and path != ".metadata":
            bad.append(path + " (object without properties)")
        for key, value in (node.get("properties") or {}).items():
            bad += walk_no_preserve(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            bad += walk_no_preserve(node["items"], path + "[]")
    return bad


def test_schema_is_fully_structural():
    assert walk_no_preserve(SCHEMA) == []
    status = SCHEMA["properties"]["status"]["properties"]
    assert status["phase"]["enum"] == list(PHASES)
    assert status["category"]["enum"] == list(CATEGORIES)
    assert VERSION["subresources"] == {"status": {}}
    assert CRD["spec"]["names"]["shortNames"] == ["prec"]


def test_every_status_the_operator_wrote_validates(operator_run):
    recoveries, _ = operator_run
    assert len(recoveries) >= 7
    for rec in recoveries:
        assert errors(rec) == [], rec["metadata"]["name"]
    phases = {r["status"]["phase"] for r in recoveries}
    assert phases & DIAGNOSED_PHASES and "Error" in phases


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_samples_validate(sample):
    for doc in yaml.safe_load_all(sample.read_text()):
        assert errors(doc) == []


def test_schema_rejects_bad_objects():
    bad_phase = {"spec": {"log": {"text": "x"}}, "status": {"phase": "Exploded"}}
    assert errors(bad_phase)
    assert errors({"spec": {}})  # neither target nor log
    assert errors({"spec": {"target": {"kind": "Deployment", "name": "x"}}})
    assert errors({"spec": {"log": {"text": "x"}}, "status": {"confidence": 1.5}})


def _resolve(obj: dict[str, Any], json_path: str) -> Any:
    cur: Any = obj
    for part in json_path.lstrip(".").split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def test_printer_columns_resolve_on_written_statuses(operator_run):
    recoveries, _ = operator_run
    columns = {c["name"]: c["jsonPath"] for c in VERSION["additionalPrinterColumns"]}
    for wanted in ("Target-Kind", "Target", "Category", "Severity", "Phase", "Action", "Age"):
        assert wanted in columns
    for name, path in columns.items():
        values = [_resolve(r, path) for r in recoveries]
        assert any(v is not None for v in values), f"column {name} ({path}) never resolves"
    for rec in recoveries:
        if rec["status"]["phase"] in DIAGNOSED_PHASES:
            for col in ("Category", "Severity", "Phase"):
                assert _resolve(rec, columns[col]) is not None
