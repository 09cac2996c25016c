"""The Analyst against a real OpenAI-compatible server on loopback (tests/llm_server.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_server import GOOD_ANSWER, FakeLLMServer, Reply, llm_server, shared_classifier
from pipeline_recovery.classifier import Classifier
from pipeline_recovery.llm import AnalysisOutcome, Analyst
from pipeline_recovery.metrics import REGISTRY
from pipeline_recovery.model import Diagnosis
from pipeline_recovery.settings import load_settings

__all__ = ["llm_server"]

API_KEY = "sk-holysheep-test-0123456789abcdef"
MODEL = "gpt-4.1"

UNKNOWN_LOG = b"\n".join(
    [b"$ make release"]
    + [b"[%04d] building shard %d ... ok" % (i, i) for i in range(200)]
    + [
        b"frobnicate: internal invariant violated in stage 'assemble' (code 0x2f)",
        b"##[error]Process completed with exit code 3 (stage 42).",
    ]
)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return shared_classifier()


def _diagnose(clf: Classifier, log: bytes) -> tuple[Diagnosis, list[Any]]:
    scan = clf.scan_bytes(log, source="log", container="build")
    return clf.diagnose([scan]), [scan]


def _settings(server: FakeLLMServer, **overrides: Any) -> Any:
    base: dict[str, Any] = {
        "llm_api_key": API_KEY,
        "llm_base_url": server.base_url,
        "llm_model": MODEL,
        "llm_timeout_seconds": 2.0,
        "llm_retry_backoff_seconds": 0.01,
        "llm_max_retries": 2,
    }
    base.update(overrides)
    return load_settings(**base)


@pytest.fixture
async def analyst(llm_server: FakeLLMServer) -> AsyncIterator[Analyst]:
    a = Analyst.from_settings(_settings(llm_server))
    yield a
    await a.aclose()


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_success_fills_answer_usage_cost_and_metrics(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    diag, scans = _diagnose(classifier, UNKNOWN_LOG)
    assert diag.category == "unknown" and analyst.should_analyse(diag, "Auto")
    ok_before = _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="ok")
    tok_before = _metric("pipeline_recovery_llm_tokens_total", model=MODEL, direction="prompt")
    outcome = await analyst.analyse(diag, scans, ["Job ci/release: BackoffLimitExceeded"])
    assert outcome.status == "ok", outcome.reason
    assert outcome.answer is not None
    assert outcome.answer.root_cause == GOOD_ANSWER["root_cause"]
    assert outcome.answer.category == "missing-file"
    assert outcome.answer.suggested_action == "clear-cache"
    assert (outcome.prompt_tokens, outcome.completion_tokens) == (120, 40)
    assert outcome.cost_usd == pytest.approx((120 * 2.0 + 40 * 8.0) / 1e6)
    assert outcome.fingerprint == diag.fingerprint
    assert outcome.status_analysis()["source"] == "ai"
    assert outcome.condition()[:2] == ("True", "Analyzed")
    # What went over the wire: JSON mode, low temperature, bounded completion, the key as bearer.
    (seen,) = llm_server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
    assert seen.body["response_format"] == {"type": "json_object"}
    assert seen.body["model"] == MODEL and seen.body["temperature"] <= 0.2
    assert seen.body["max_tokens"] == 800
    user = seen.body["messages"][1]["content"]
    assert "frobnicate: internal invariant violated" in user
    assert "BackoffLimitExceeded" in user
    assert (
        _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="ok") == ok_before + 1
    )
    assert (
        _metric("pipeline_recovery_llm_tokens_total", model=MODEL, direction="prompt")
        == tok_before + 120
    )


async def test_markdown_fenced_json_is_accepted(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    llm_server.push(Reply.text("```json\n" + json.dumps(GOOD_ANSWER, indent=2) + "\n```"))
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert outcome.status == "ok", outcome.reason
    assert outcome.answer is not None and outcome.answer.estimated_minutes == 10


@pytest.mark.parametrize(
    ("reply", "reason_part"),
    [
        (Reply.text("The root cause is probably the cache. Try clearing it."), "not JSON"),
        (Reply.text("[1, 2, 3]"), "not an object"),
        (Reply.answer({**GOOD_ANSWER, "estimated_minutes": "about ten"}), "estimated_minutes"),
        (Reply.answer({**GOOD_ANSWER, "similar_cases": "one string"}), "similar_cases"),
        (Reply.answer({**GOOD_ANSWER, "root_cause": "x" * 5000}), "root_cause"),
        (Reply.answer({"solution": "only a solution"}), "root_cause"),
        (Reply.answer({**GOOD_ANSWER, "category": "cosmic-rays"}), "unknown category"),
        (Reply.answer({**GOOD_ANSWER, "suggested_action": "rm -rf /"}), "suggested_action"),
        (Reply(body=b'{"object": "error"}'), "not a chat completion"),
    ],
)
async def test_rejected_answers_leave_the_pattern_result(
    analyst: Analyst,
    classifier: Classifier,
    llm_server: FakeLLMServer,
    reply: Reply,
    reason_part: str,
) -> None:
    llm_server.push(reply)
    before = _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="invalid")
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert outcome.status == "invalid"
    assert outcome.answer is None
    assert reason_part in outcome.reason and "\n" not in outcome.reason
    assert outcome.condition()[:2] == ("False", "InvalidAnswer")
    assert outcome.status_analysis()["source"] == "patterns"
    assert (
        _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="invalid")
        == before + 1
    )
    # An invalid answer is not cached: the next identical failure asks again.
    llm_server.push(Reply.answer())
    again = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert again.status == "ok"
    assert len(llm_server.requests) == 2


async def test_429_honours_retry_after_then_succeeds(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    llm_server.push(Reply.error(429, retry_after="1"), Reply.answer())
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    waited = loop.time() - started
    assert outcome.status == "ok", outcome.reason
    assert len(llm_server.requests) == 2
    # Behavioural, not a speed assertion: with a 10 ms backoff setting, only honouring the
    # server's Retry-After explains waiting a whole second between the two requests.
    assert waited >= 0.95


async def test_429_past_the_retries_fails_with_rate_limited(
    llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    analyst = Analyst.from_settings(_settings(llm_server, llm_max_retries=1))
    llm_server.push(Reply.error(429, retry_after="0"), Reply.error(429, retry_after="0"))
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    await analyst.aclose()
    assert outcome.status == "failed"
    assert outcome.condition()[:2] == ("False", "RateLimited")
    assert len(llm_server.requests) == 2


async def test_retry_after_too_long_is_not_waited_for(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    llm_server.push(Reply.error(429, retry_after="3600"))
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert outcome.status == "failed" and "429" in outcome.reason
    assert len(llm_server.requests) == 1


async def test_500_then_success(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    llm_server.push(Reply.error(500), Reply.error(503), Reply.answer())
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert outcome.status == "ok", outcome.reason
    assert len(llm_server.requests) == 3


async def test_401_is_not_retried_and_key_never_in_reason(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    llm_server.push(Reply.error(401))
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert outcome.status == "failed" and "401" in outcome.reason
    assert len(llm_server.requests) == 1
    assert API_KEY not in repr(outcome) and API_KEY not in json.dumps(outcome.status_analysis())


async def test_server_hanging_past_the_timeout(
    llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    analyst = Analyst.from_settings(_settings(llm_server, llm_timeout_seconds=0.3))
    llm_server.push(Reply.hang(20))
    before = _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="timeout")
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    await analyst.aclose()
    assert outcome.status == "failed"
    assert outcome.condition()[:2] == ("False", "Timeout")
    assert "0.3s" in outcome.reason
    assert len(llm_server.requests) == 1  # a timeout is not retried: the server may still be busy
    assert (
        _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="timeout")
        == before + 1
    )


async def test_circuit_opens_after_failures_and_closes_after_reset(
    llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    analyst = Analyst.from_settings(
        _settings(
            llm_server, llm_max_retries=0, llm_circuit_failures=2, llm_circuit_reset_seconds=0.3
        )
    )
    diag, scans = _diagnose(classifier, UNKNOWN_LOG)
    llm_server.push(Reply.error(500), Reply.error(502))
    assert (await analyst.analyse(diag, scans)).status == "failed"
    assert (await analyst.analyse(diag, scans)).status == "failed"
    assert analyst.circuit_state == "open"
    blocked = await analyst.analyse(diag, scans)
    assert blocked.status == "circuit_open"
    assert blocked.condition()[:2] == ("False", "CircuitOpen")
    assert len(llm_server.requests) == 2  # the open circuit sent nothing
    await asyncio.sleep(0.35)
    assert analyst.circuit_state == "half-open"
    probe = await analyst.analyse(diag, scans)  # the default reply is a good answer
    assert probe.status == "ok"
    assert analyst.circuit_state == "closed"
    assert len(llm_server.requests) == 3
    await analyst.aclose()


async def test_failed_probe_reopens_the_circuit(
    llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    analyst = Analyst.from_settings(
        _settings(
            llm_server, llm_max_retries=0, llm_circuit_failures=1, llm_circuit_reset_seconds=0.2
        )
    )
    diag, scans = _diagnose(classifier, UNKNOWN_LOG)
    llm_server.push(Reply.error(500), Reply.error(500))
    assert (await analyst.analyse(diag, scans)).status == "failed"
    await asyncio.sleep(0.25)
    assert (await analyst.analyse(diag, scans)).status == "failed"  # the probe
    assert analyst.circuit_state == "open"
    assert (await analyst.analyse(diag, scans)).status == "circuit_open"
    assert len(llm_server.requests) == 2
    await analyst.aclose()


async def test_budget_exhausted_skips_with_a_condition(
    llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    # Room for one request's worst case (~1.6k prompt + 800 completion tokens); the first
    # reports 2.5k tokens used, so the second does not fit in the hour any more.
    analyst = Analyst.from_settings(_settings(llm_server, llm_tokens_per_hour=3000))
    llm_server.push(Reply.answer(usage=(2000, 500)))
    first = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert first.status == "ok"
    other = UNKNOWN_LOG.replace(b"frobnicate", b"quuxinate")  # not the same failure: no cache
    before = _metric(
        "pipeline_recovery_llm_requests_total", model=MODEL, outcome="budget_exhausted"
    )
    second = await analyst.analyse(*_diagnose(classifier, other))
    await analyst.aclose()
    assert second.status == "skipped_budget"
    assert "hourly token budget" in second.reason
    assert second.condition()[:2] == ("False", "BudgetExhausted")
    assert len(llm_server.requests) == 1
    assert (
        _metric("pipeline_recovery_llm_requests_total", model=MODEL, outcome="budget_exhausted")
        == before + 1
    )


async def test_cost_budget(llm_server: FakeLLMServer, classifier: Classifier) -> None:
    analyst = Analyst.from_settings(_settings(llm_server, llm_cost_usd_per_day=0.000001))
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    await analyst.aclose()
    assert outcome.status == "skipped_budget" and "cost" in outcome.reason
    assert llm_server.requests == []


async def test_cache_hit_for_the_same_failure_in_another_run(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    first = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    # The same failure on another day: timestamps and numbers differ, the template does not.
    rerun = UNKNOWN_LOG.replace(b"0x2f", b"0x31").replace(b"stage 42", b"stage 43")
    hits = _metric("pipeline_recovery_llm_cache_hits_total")
    second = await analyst.analyse(*_diagnose(classifier, rerun))
    assert first.status == "ok" and second.status == "cache"
    assert second.answer == first.answer
    assert second.status_analysis()["source"] == "cache"
    assert (second.prompt_tokens, second.cost_usd) == (0, 0.0)
    assert second.condition()[:2] == ("True", "AnsweredFromCache")
    assert len(llm_server.requests) == 1
    assert _metric("pipeline_recovery_llm_cache_hits_total") == hits + 1


async def test_cache_ttl_expires(llm_server: FakeLLMServer, classifier: Classifier) -> None:
    analyst = Analyst.from_settings(_settings(llm_server, llm_cache_ttl_seconds=0.1))
    diag, scans = _diagnose(classifier, UNKNOWN_LOG)
    assert (await analyst.analyse(diag, scans)).status == "ok"
    await asyncio.sleep(0.15)
    assert (await analyst.analyse(diag, scans)).status == "ok"
    await analyst.aclose()
    assert len(llm_server.requests) == 2


async def test_fifty_identical_failures_make_one_request(
    analyst: Analyst, llm_server: FakeLLMServer, classifier: Classifier
) -> None:
    llm_server.push(Reply.answer(delay=0.2))  # all 50 arrive while the first is in flight
    failures = [_diagnose(classifier, UNKNOWN_LOG) for _ in range(50)]
    hits = _metric("pipeline_recovery_llm_cache_hits_total")
    outcomes: list[AnalysisOutcome] = await asyncio.gather(
        *(analyst.analyse(diag, scans) for diag, scans in failures)
    )
    assert len(llm_server.requests) == 1
    assert [o.status for o in outcomes].count("ok") == 1
    assert [o.status for o in outcomes].count("cache") == 49
    assert all(o.answer == outcomes[0].answer for o in outcomes)
    assert _metric("pipeline_recovery_llm_cache_hits_total") == hits + 49


async def test_concurrency_limit(llm_server: FakeLLMServer, classifier: Classifier) -> None:
    analyst = Analyst.from_settings(_settings(llm_server, llm_concurrency=2))
    llm_server.default = Reply.answer(delay=0.1)
    logs = [UNKNOWN_LOG.replace(b"frobnicate", b"tool%c" % c) for c in b"abcdef"]
    loop = asyncio.get_running_loop()
    started = loop.time()
    outcomes = await asyncio.gather(*(analyst.analyse(*_diagnose(classifier, x)) for x in logs))
    await analyst.aclose()
    assert all(o.status == "ok" for o in outcomes)
    assert len(llm_server.requests) == 6
    # 6 requests of 0.1 s, two at a time, cannot finish in less than three rounds.
    assert loop.time() - started >= 0.29


async def test_no_key_means_disabled(classifier: Classifier) -> None:
    analyst = Analyst.from_settings(load_settings(llm_api_key=None))
    outcome = await analyst.analyse(*_diagnose(classifier, UNKNOWN_LOG))
    assert not analyst.enabled
    assert outcome.status == "disabled"
    assert "HOLYSHEEP_API_KEY" in outcome.reason
    assert outcome.condition()[:2] == ("False", "Disabled")
    await analyst.aclose()


def test_should_analyse_modes(classifier: Classifier) -> None:
    analyst = Analyst.from_settings(load_settings(llm_api_key=None, ai_confidence_threshold=0.6))
    unknown, _ = _diagnose(classifier, UNKNOWN_LOG)
    sure, _ = _diagnose(
        classifier, b"npm ERR! code ENOSPC\nnpm ERR! nospc ENOSPC: no space left on device"
    )
    assert sure.category == "disk-full" and sure.confidence >= 0.6
    assert analyst.should_analyse(unknown, "Auto")
    assert not analyst.should_analyse(sure, "Auto")
    assert analyst.should_analyse(sure, "Always")
    assert not analyst.should_analyse(unknown, "Never")
    assert analyst.should_analyse(unknown)  # default mode from settings: Auto
