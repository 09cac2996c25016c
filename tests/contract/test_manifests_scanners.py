"""Contract: yamllint and checkov pass on manifests, CRDs and Dockerfile; each skip says why."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from yamllint import linter
from yamllint.config import YamlLintConfig

ROOT = Path(__file__).resolve().parents[2]
LINTED = ["crds", "manifests", "overlays", "tests/e2e", ".github"]
# checkov's targets and the frameworks that apply to them.
CHECKOV_TARGETS = [("-d", "manifests"), ("-d", "crds"), ("-d", "overlays"), ("-f", "Dockerfile")]
MIN_REASON = 30  # a skip's reason is a sentence, not a ticket number


def _linted_files() -> list[Path]:
    files: list[Path] = []
    for top in LINTED:
        if (ROOT / top).is_dir():
            files += sorted(p for p in (ROOT / top).rglob("*") if p.suffix in {".yaml", ".yml"})
    return files


def test_yamllint_clean() -> None:
    config = YamlLintConfig(file=str(ROOT / ".yamllint"))
    problems = []
    for path in _linted_files():
        text = path.read_text(encoding="utf-8")
        problems += [
            f"{path.relative_to(ROOT)}:{p.line}: {p.desc}"
            for p in linter.run(text, config)
            if p.level == "error" or p.rule in {"line-length", "trailing-spaces"}
        ]
    assert not problems, "\n".join(problems)


def _checkov() -> Path | None:
    configured = os.environ.get("CHECKOV", ".venv-checkov/bin/checkov")
    path = Path(configured) if Path(configured).is_absolute() else ROOT / configured
    return path if path.exists() else None


def _run_checkov(binary: Path, flag: str, target: str) -> list[dict[str, Any]]:
    done = subprocess.run(
        [
            str(binary),
            flag,
            target,
            "--framework",
            "kubernetes",
            "dockerfile",
            "--skip-download",
            "--output",
            "json",
            "--soft-fail",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": ""},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    # A target with nothing checkov knows (CRDs only) reports bare zero counts.
    return [r for r in reports if "results" in r]


@pytest.mark.parametrize(("flag", "target"), CHECKOV_TARGETS, ids=[t for _, t in CHECKOV_TARGETS])
def test_checkov_reports_no_failed_checks(flag: str, target: str) -> None:
    binary = _checkov()
    if binary is None:
        message = "checkov is not installed: run `make checkov` (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    reports = _run_checkov(binary, flag, target)
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, "\n".join(failed)
    assert all(r["summary"]["parsing_errors"] == 0 for r in reports)
    if target in {"manifests", "Dockerfile"}:
        assert sum(r["summary"]["passed"] for r in reports) > 20, "checkov checked nothing"


def _annotations(doc: Any) -> dict[str, str]:
    if not isinstance(doc, dict):
        return {}
    meta = doc.get("metadata") or {}
    return dict(meta.get("annotations") or {})


def test_every_checkov_skip_carries_a_reason() -> None:
    skips: list[tuple[str, str, str]] = []
    for path in _linted_files():
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            for key, value in _annotations(doc).items():
                if key.startswith("checkov.io/skip"):
                    check, _, reason = str(value).partition("=")
                    skips.append((str(path.relative_to(ROOT)), check.strip(), reason.strip()))
        for match in re.finditer(
            r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", path.read_text(encoding="utf-8")
        ):
            skips.append(
                (str(path.relative_to(ROOT)), match.group(1), (match.group(2) or "").strip())
            )
    for match in re.finditer(
        r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", (ROOT / "Dockerfile").read_text(encoding="utf-8")
    ):
        skips.append(("Dockerfile", match.group(1), (match.group(2) or "").strip()))
    for where, check, reason in skips:
        assert re.fullmatch(r"CKV2?_[A-Z0-9]+_\d+", check), f"{where}: malformed skip {check!r}"
        assert len(reason) >= MIN_REASON, f"{where}: skip of {check} needs a written reason"
    # The known skips are documented in docs/security.md too.
    security = (ROOT / "docs/security.md").read_text(encoding="utf-8")
    for where, check, _ in skips:
        assert check in security, (
            f"{check} (skipped in {where}) is not explained in docs/security.md"
        )
