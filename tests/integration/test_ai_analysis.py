"""The operator's AI step against KMock's emulator and a loopback OpenAI-compatible server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kmock_cluster import NS, wait_recovery
from llm_server import GOOD_ANSWER, FakeLLMServer, Reply, running_server
from pipeline_recovery.incidents import recovery_name
from pipeline_recovery.workloads import ContainerRun

UNKNOWN_LOG = "\n".join(
    [
        "$ ./ci/release.sh",
        *[f"[{i:03d}] packaging layer {i} ... done" for i in range(30)],
        "release-tool: manifest checksum drift detected in layer 17 (expected 9 entries, got 11)",
        "##[error]Process completed with exit code 5.",
    ]
)
GH_TOKEN = "ghp_" + "Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8"
DB_PASSWORD = "s3cr3t-Pr0d-DB!"
SECRET_LOG = "\n".join(
    [
        f"+ git clone https://x-access-token:{GH_TOKEN}@github.com/acme/app.git",
        f"+ export DB_PASSWORD={DB_PASSWORD}",
        "release-tool: manifest checksum drift detected in layer 3",
        f"release-tool: retry with token={GH_TOKEN} refused",
        "##[error]Process completed with exit code 5.",
    ]
)
AI_ANSWER = {
    **GOOD_ANSWER,
    "root_cause": "The release manifest was built from a stale layer cache.",
    "solution": "Invalidate the layer cache and rebuild the manifest.",
    "similar_cases": ["checksum drift after partial cache restore", "stale layer in CI cache"],
    "estimated_minutes": 12,
    "category": "missing-file",
    "confidence": 0.7,
    "suggested_action": "clear-cache",
}


@pytest.fixture
def llm() -> Iterator[FakeLLMServer]:
    with running_server(Reply.answer(AI_ANSWER)) as server:
        yield server


def _ai_settings(server: FakeLLMServer, **extra: Any) -> dict[str, Any]:
    return {
        "llm_api_key": "hs-integration-key",
        "llm_base_url": server.base_url,
        "llm_timeout_seconds": 2.0,
        "llm_retry_backoff_seconds": 0.01,
        "remediation_mode": "Off",
        **extra,
    }


async def _failed(cluster: Any, name: str, log: str) -> str:
    job, _pod = await cluster.failed_job(NS, name, [ContainerRun(log=log, exit_code=5)])
    return recovery_name("Job", name, job["metadata"]["uid"])


async def test_unknown_failure_gets_the_ai_fields_and_condition(
    cluster: Any, start_operator: Any, llm: FakeLLMServer
) -> None:
    await start_operator(**_ai_settings(llm))
    rec = await wait_recovery(cluster, await _failed(cluster, "release-7", UNKNOWN_LOG))
    status = rec["status"]
    # The pattern table did not know this failure; the validated AI answer filled the gaps.
    assert status["category"] == "missing-file"
    assert status["confidence"] == pytest.approx(0.7)
    assert status["rootCause"] == AI_ANSWER["root_cause"]
    assert status["solution"] == AI_ANSWER["solution"]
    assert status["estimatedRecoveryMinutes"] == 12
    assert status["analysis"]["similarCases"] == AI_ANSWER["similar_cases"]
    analysis = status["analysis"]
    assert analysis["source"] == "ai" and analysis["outcome"] == "ok"
    assert analysis["model"] == "gpt-4.1"
    assert (analysis["promptTokens"], analysis["completionTokens"]) == (120, 40)
    assert analysis["costUSD"] > 0 and analysis["latencyMs"] >= 0
    assert analysis["fingerprint"]
    assert analysis["patternCategory"] == "unknown"
    assert analysis["suggestedAction"] == "clear-cache"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["AIAnalyzed"]["status"] == "True"
    assert conds["AIAnalyzed"]["reason"] == "Analyzed"
    (seen,) = llm.requests
    assert "manifest checksum drift detected" in seen.body["messages"][1]["content"]


async def test_planted_secret_never_reaches_the_server_nor_the_status(
    cluster: Any, start_operator: Any, llm: FakeLLMServer
) -> None:
    await start_operator(**_ai_settings(llm))
    rec = await wait_recovery(cluster, await _failed(cluster, "release-8", SECRET_LOG))
    assert rec["status"]["analysis"]["outcome"] == "ok"
    assert llm.requests
    for raw in llm.bodies():
        assert GH_TOKEN not in raw and DB_PASSWORD not in raw
        assert json.dumps(DB_PASSWORD)[1:-1] not in raw
    dumped = json.dumps(rec)
    assert GH_TOKEN not in dumped and DB_PASSWORD not in dumped
    assert "[REDACTED:" in llm.requests[0].body["messages"][1]["content"]


async def test_garbage_answer_leaves_the_pattern_result_with_a_reason(
    cluster: Any, start_operator: Any, llm: FakeLLMServer
) -> None:
    llm.default = Reply.text("Sure! The problem is probably the cache :) run rm -rf / to fix")
    await start_operator(**_ai_settings(llm))
    rec = await wait_recovery(cluster, await _failed(cluster, "release-9", UNKNOWN_LOG))
    status = rec["status"]
    assert status["category"] == "unknown"  # the pattern verdict stands
    assert "rm -rf" not in json.dumps(status)
    assert status["analysis"]["source"] == "patterns"
    assert status["analysis"]["outcome"] == "invalid"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["AIAnalyzed"]["status"] == "False"
    assert conds["AIAnalyzed"]["reason"] == "InvalidAnswer"
    assert "not JSON" in conds["AIAnalyzed"]["message"]
    assert conds["Diagnosed"]["status"] == "True"


async def test_no_key_and_confident_patterns_say_why_ai_was_not_used(
    cluster: Any, start_operator: Any, llm: FakeLLMServer
) -> None:
    await start_operator(remediation_mode="Off", llm_api_key=None)
    rec = await wait_recovery(cluster, await _failed(cluster, "release-10", UNKNOWN_LOG))
    conds = {c["type"]: c for c in rec["status"]["conditions"]}
    assert (conds["AIAnalyzed"]["status"], conds["AIAnalyzed"]["reason"]) == ("False", "Disabled")
    assert "HOLYSHEEP_API_KEY" in conds["AIAnalyzed"]["message"]
    enospc = "npm ERR! code ENOSPC\nnpm ERR! nospc ENOSPC: no space left on device, write\n"
    rec = await wait_recovery(cluster, await _failed(cluster, "release-11", enospc))
    conds = {c["type"]: c for c in rec["status"]["conditions"]}
    assert rec["status"]["category"] == "disk-full"
    assert conds["AIAnalyzed"]["reason"] == "PatternsConfident"
    assert llm.requests == []


async def test_llm_timeout_is_a_condition_not_an_error(
    cluster: Any, start_operator: Any, llm: FakeLLMServer
) -> None:
    llm.default = Reply.hang(20)
    await start_operator(**_ai_settings(llm, llm_timeout_seconds=0.3, llm_max_retries=0))
    rec = await wait_recovery(cluster, await _failed(cluster, "release-12", UNKNOWN_LOG))
    conds = {c["type"]: c for c in rec["status"]["conditions"]}
    assert rec["status"]["category"] == "unknown"
    assert (conds["AIAnalyzed"]["status"], conds["AIAnalyzed"]["reason"]) == ("False", "Timeout")
