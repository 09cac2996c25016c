"""`classify --ai`: no key says so and keeps the pattern result; with a key it asks the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm_server import FakeLLMServer, Reply, llm_server, shared_classifier
from pipeline_recovery.llm.cli import analyse_for_cli
from pipeline_recovery.settings import load_settings

__all__ = ["llm_server"]

LOG = b"$ ./build.sh\nwidget compiler: unexpected state 0x13 in pass 'link'\nexit status 9\n"
CLI = [sys.executable, "-m", "pipeline_recovery.cli"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k}
    env.update(extra)
    return env


def test_classify_ai_without_key_says_so_and_prints_the_pattern_result(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    log.write_bytes(LOG)
    done = subprocess.run(
        [*CLI, "classify", str(log), "--ai", "--json"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "AI analysis is off: no API key (set PIPELINE_RECOVERY_LLM_API_KEY or HOLYSHEEP_API_KEY)"
        in done.stderr
    )
    result = json.loads(done.stdout)
    assert result["category"] == "unknown" and "ai" not in result


def test_classify_ai_with_key_uses_the_endpoint(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    log = tmp_path / "build.log"
    log.write_bytes(LOG)
    done = subprocess.run(
        [*CLI, "classify", str(log), "--ai", "--json"],
        env=_env(
            HOLYSHEEP_API_KEY="hs-cli-key", PIPELINE_RECOVERY_LLM_BASE_URL=llm_server.base_url
        ),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["category"] == "unknown"  # the pattern verdict is printed as it was
    assert result["ai"]["status"] == "ok"
    assert result["ai"]["suggestedAction"] == "clear-cache"
    assert result["ai"]["analysis"]["source"] == "ai"
    assert "hs-cli-key" not in done.stdout + done.stderr
    (seen,) = llm_server.requests
    assert seen.headers["Authorization"] == "Bearer hs-cli-key"
    assert "unexpected state 0x13" in seen.body["messages"][1]["content"]


def test_analyse_for_cli_reports_an_invalid_answer(
    llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.push(Reply.text("I think it is the linker."))
    clf = shared_classifier()
    scan = clf.scan_bytes(LOG, container="build")
    settings = load_settings(llm_api_key="k", llm_base_url=llm_server.base_url)
    out = analyse_for_cli(diagnosis=clf.diagnose([scan]), scans=[scan], settings=settings)
    assert out is not None and out["status"] == "invalid"
    assert "rootCause" not in out
    assert "the pattern result stands" in capsys.readouterr().err
