"""Contract: docs name every setting and metric the code has, nothing the code lacks, and the
README's quick start names paths and objects that exist."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import yaml
from prometheus_client.metrics_core import Metric

from pipeline_recovery import metrics
from pipeline_recovery.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
SETTING = re.compile(r"\bPIPELINE_RECOVERY_[A-Z0-9_]*[A-Z0-9]")
METRIC = re.compile(r"\bpipeline_recovery_[a-z0-9_]*[a-z0-9]")
SERIES_SUFFIXES = ("_bucket", "_sum", "_count", "_created", "_info")


def _text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_config_docs", ROOT / "hack/gen_config_docs.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env_names() -> set[str]:
    return {"PIPELINE_RECOVERY_" + name.upper() for name in Settings.model_fields}


def _exported(metric: Metric) -> str:
    return metric.name + "_total" if metric.type == "counter" else metric.name


def _metric_names() -> set[str]:
    return {_exported(m) for m in metrics.REGISTRY.collect()}


def test_configuration_doc_is_generated_from_settings_and_current() -> None:
    gen = _generator()
    assert gen.missing_meanings() == [], "add a meaning in hack/gen_config_docs.py MEANINGS"
    current = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    assert current == gen.render(), "docs/configuration.md is stale: run hack/gen_config_docs.py"


def test_every_setting_is_documented() -> None:
    table = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    missing = sorted(n for n in _env_names() if f"`{n}`" not in table)
    assert not missing, f"settings missing from docs/configuration.md: {missing}"


def test_every_documented_setting_exists() -> None:
    unknown = sorted(set(SETTING.findall(_text())) - _env_names())
    assert not unknown, f"docs name settings the code does not have: {unknown}"


def test_every_metric_is_documented() -> None:
    text = _text()
    missing = sorted(n for n in _metric_names() if n not in text)
    assert not missing, f"metrics missing from docs/ and README.md: {missing}"


def test_every_documented_metric_exists() -> None:
    names = _metric_names()
    bases = {n.removesuffix("_total") for n in names}
    unknown = set()
    for found in set(METRIC.findall(_text())):
        stem = next((found.removesuffix(s) for s in SERIES_SUFFIXES if found.endswith(s)), found)
        if found not in names and stem not in names and stem not in bases:
            unknown.add(found)
    assert not unknown, f"docs name metrics the code does not export: {sorted(unknown)}"


def _quick_start() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start on a real cluster (kind)", 1)
    assert len(section) == 2, "README.md lost its kind quick start"
    return section[1].split("\n## ", 1)[0]


def _objects(directory: str) -> list[dict[str, object]]:
    return [
        d
        for p in sorted((ROOT / directory).rglob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text(encoding="utf-8"))
        if isinstance(d, dict) and "kind" in d and "metadata" in d
    ]


def test_quick_start_matches_the_manifests() -> None:
    text = _quick_start()
    for path in re.findall(r"kubectl apply -k (\S+)", text):
        assert (ROOT / path / "kustomization.yaml").exists(), f"README applies missing {path}"
    for path in re.findall(r"-f (tests/e2e/\S+)", text):
        assert (ROOT / path).exists(), f"README applies missing {path}"
    manifests = _objects("manifests") + _objects("crds") + _objects("tests/e2e")
    names = {(d["kind"], d["metadata"]["name"]) for d in manifests}  # type: ignore[index]
    for ns in set(re.findall(r"(?:-n|--namespace) ([a-z0-9-]+)", text)):
        assert ("Namespace", ns) in names, f"README uses namespace {ns} no manifest creates"
    for deploy in re.findall(r"deploy/([a-z0-9-]+)", text):
        assert ("Deployment", deploy) in names
    for crd in re.findall(r"crd/([a-z0-9.-]+)", text):
        assert ("CustomResourceDefinition", crd) in names
    secret = re.search(r"create secret generic\s+(\S+)", text)
    assert secret and ("Secret", secret.group(1)) in names  # the example in manifests/samples
    kind_overlay = yaml.safe_load((ROOT / "overlays/kind/kustomization.yaml").read_text())
    image = kind_overlay["images"][0]
    loaded = f"{image['newName']}:{image['newTag']}"
    assert f"kind load docker-image {loaded}" in text and f"IMG={loaded}" in text
