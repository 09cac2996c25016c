"""LLM cost benchmark: tokens sent per AI diagnosis vs the seed's whole log; calls per 100 twins."""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pipeline_recovery.classifier import Classifier
from pipeline_recovery.llm import Analyst
from pipeline_recovery.llm.prompt import whole_log_tokens
from pipeline_recovery.llm.tokens import tokenizer_name
from pipeline_recovery.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "logs"
BIG = 100 * 1024
GOAL_RATIO = 10.0

_FAILURES = {
    "disk-full": ["npm ERR! code ENOSPC", "npm ERR! nospc ENOSPC: no space left on device, write"],
    "out-of-memory": [
        "> Task :app:compileJava FAILED",
        'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
    ],
    "unknown": [
        "frobnicate: internal invariant violated in stage 'assemble' (code 0x2f)",
        "##[error]Process completed with exit code 3.",
    ],
    "test-failure": [
        "FAILED tests/test_api.py::test_login - AssertionError: assert 401 == 200",
        "=========== 1 failed, 812 passed in 93.12s ===========",
    ],
}


def generated_log(size: int, failure: str, seed: int, run: int = 0) -> bytes:
    """A realistic-looking build log of about `size` bytes with the failure near the end.

    `seed` fixes what the build does; `run` only changes timestamps and durations, as two runs
    of the same failing pipeline would.
    """
    rng = random.Random(seed)
    clock = random.Random(run)
    verbs = ["compiling", "bundling", "resolving", "downloading", "linking", "testing"]
    lines: list[str] = []
    total = 0
    i = 0
    while total < size:
        i += 1
        line = (
            f"2024-05-{1 + run % 28:02d}T12:{i // 3600 % 60:02d}:{i % 60:02d}."
            f"{clock.randrange(1000):03d}Z "
            f"[{rng.choice(['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN'])}] {rng.choice(verbs)} "
            f"src/{rng.choice(['core', 'api', 'ui', 'util'])}/module_{rng.randrange(5000)}.ts "
            f"({clock.randrange(1, 900)} ms, {rng.randrange(10, 9000)} kB)"
        )
        lines.append(line)
        total += len(line) + 1
    cut = len(lines) - rng.randrange(20, 200)
    lines[cut:cut] = _FAILURES[failure]
    return "\n".join(lines).encode()


def corpus() -> list[tuple[str, bytes]]:
    logs = [(str(p.relative_to(FIXTURES)), p.read_bytes()) for p in sorted(FIXTURES.rglob("*.log"))]
    for n, (size, failure) in enumerate(
        [
            (150 * 1024, "disk-full"),
            (400 * 1024, "unknown"),
            (1024 * 1024, "out-of-memory"),
            (2 * 1024 * 1024, "test-failure"),
            (8 * 1024 * 1024, "unknown"),
        ]
    ):
        logs.append((f"generated/{failure}-{size // 1024}KB.log", generated_log(size, failure, n)))
    return logs


def token_savings(clf: Classifier, analyst: Analyst, budget: int) -> tuple[bool, dict[str, Any]]:
    sent: list[int] = []
    ratios_big: list[float] = []
    over_budget = 0
    for _name, data in corpus():
        scan = clf.scan_bytes(data, source="log", container="build")
        diag = clf.diagnose([scan])
        prompt = analyst.build_prompt(diag, [scan], [])
        sent.append(prompt.tokens)
        over_budget += prompt.tokens > budget
        if len(data) > BIG:
            seed = whole_log_tokens(data.decode("utf-8", "replace"))
            ratios_big.append(seed / prompt.tokens)
    ok = over_budget == 0 and bool(ratios_big) and min(ratios_big) >= GOAL_RATIO
    return ok, {
        "logs": len(sent),
        "median": statistics.median(sent),
        "max": max(sent),
        "over_budget": over_budget,
        "big": len(ratios_big),
        "min_ratio": min(ratios_big, default=0.0),
        "median_ratio": statistics.median(ratios_big) if ratios_big else 0.0,
    }


async def _twins(clf: Classifier, base_url: str, concurrent: bool) -> int:
    settings = load_settings(llm_api_key="bench", llm_base_url=base_url, llm_concurrency=4)
    analyst = Analyst.from_settings(settings)
    # 100 runs of the same failure: identical apart from timestamps and durations.
    runs = [generated_log(120 * 1024, "unknown", seed=42, run=run) for run in range(100)]
    failures = []
    for data in runs:
        scan = clf.scan_bytes(data, source="log", container="build")
        failures.append((clf.diagnose([scan]), [scan]))
    if concurrent:
        await asyncio.gather(*(analyst.analyse(d, s) for d, s in failures))
    else:
        for d, s in failures:
            await analyst.analyse(d, s)
    await analyst.aclose()
    return 0


def calls_per_100(clf: Classifier) -> tuple[int, int]:
    sys.path.insert(0, str(ROOT / "tests"))
    from llm_server import Reply, running_server

    counts = []
    for concurrent in (True, False):
        with running_server(Reply.answer(delay=0.05)) as server:
            asyncio.run(_twins(clf, server.base_url, concurrent))
            counts.append(len(server.requests))
    return counts[0], counts[1]


def main() -> int:
    clf = Classifier.load()
    settings = load_settings(llm_api_key=None)
    analyst = Analyst.from_settings(settings)
    budget = settings.llm_max_prompt_tokens
    started = time.perf_counter()
    ok, stats = token_savings(clf, analyst, budget)
    print(f"tokenizer: {tokenizer_name()}; prompt budget llm_max_prompt_tokens={budget}")
    print(
        f"tokens sent per AI diagnosis over {stats['logs']} logs: median {stats['median']:.0f}, "
        f"max {stats['max']} (over budget: {stats['over_budget']})"
    )
    print(
        f"logs > 100 KB ({stats['big']}): whole-log (seed) / sent = "
        f"min {stats['min_ratio']:.1f}x, median {stats['median_ratio']:.1f}x "
        f"(goal >= {GOAL_RATIO:.0f}x)"
    )
    together, in_a_row = calls_per_100(clf)
    print(f"LLM calls per 100 identical failures: {together} arriving together, "
          f"{in_a_row} one after another (goal: 1)")
    print(f"bench_llm took {time.perf_counter() - started:.1f}s")
    return 0 if ok and together == 1 and in_a_row == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
