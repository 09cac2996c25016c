"""Classifier throughput and memory: generated CI logs (1/10/100 MB), every engine, baselines."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SIZES_MB = (1, 10, 100)
POSITIONS = ("end", "start", "absent")
EXPECTED = {"end": "network", "start": "out-of-memory", "absent": "unknown"}
CHUNK = 1 << 20
SEED_LITERALS = (b"ENOENT", b"EOUTOFMEMORY", b"ETIMEDOUT", b"MODULE_NOT_FOUND")
GOALS = {"mbps": 1000.0, "naive_ratio": 50.0, "floor_ratio": 0.3, "rss_mb": 16.0}

_NOISE = (
    "{ts} \x1b[36m[INFO]\x1b[0m Compiling module src/{mod}/{name}_{n}.ts ({n} kB)",
    "{ts} [INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/{mod}/"
    "{name}/{n}.{n}/{name}-{n}.jar",
    "{ts}    Compiling {name} v1.{n}.{n}",
    "{ts} ok  \tgithub.com/acme/{mod}/{name}\t0.{n}s",
    "{ts} tests/test_{mod}.py::test_{name}_{n} \x1b[32mPASSED\x1b[0m",
    "{ts}   \x1b[32m✓\x1b[39m {name} handles case {n} ({n} ms)",
    "{ts} #12 [build {n}/9] RUN pip install -r requirements.txt",
    "{ts} Step {n}/14 : COPY {mod}/ /app/{mod}/",
    "{ts} npm WARN deprecated {name}@{n}.0.0: this package is no longer supported",
    "{ts} npm WARN optional SKIPPING OPTIONAL DEPENDENCY: fsevents@2.3.{n}: ENOENT skipped",
    "{ts} warning: unused variable: `{name}_{n}`",
    "{ts} [WARNING] The requested profile \"{name}\" could not be activated: it does not exist.",
    "{ts} Retrying request to https://registry.npmjs.org/{name} in {n}ms (attempt 1 of 3)",
    "{ts} ========== {n} passed in {n}.12s ==========",
    "{ts} Progress: resolved {n}, reused {n}, downloaded 0, added {n}\r",
    "{ts} error_count=0 timeout_ms={n} failures=0",
    "{ts} Finished `release` profile [optimized] target(s) in {n}.31s",
)
_MODS = ("core", "api", "web", "billing", "auth", "search", "infra")
_NAMES = ("parser", "client", "router", "cache", "worker", "store", "queue", "handler")
_CAUSES = {
    "end": [
        "npm ERR! code ETIMEDOUT",
        "npm ERR! errno ETIMEDOUT",
        "npm ERR! network request to https://registry.npmjs.org/react failed, reason: connect "
        "ETIMEDOUT 104.16.24.35:443",
        "npm ERR! enoent ENOENT: no such file or directory, open '/app/package-lock.json'",
    ],
    "start": [
        "FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript "
        "heap out of memory",
        "FAIL src/app.test.ts",
        "Tests:       3 failed, 140 passed, 143 total",
    ],
    "absent": [],
}


# Lines built to resemble an error without being one (a warning with ENOENT, counters named
# error/timeout/failures, retries, "does not exist", compiler warnings, deprecations).
_NEAR_MISSES = frozenset({
    _NOISE[8], _NOISE[9], _NOISE[10], _NOISE[11], _NOISE[12], _NOISE[15]})
_ORDINARY = tuple(line for line in _NOISE if line not in _NEAR_MISSES)


def _noise_block(rng: random.Random, lines: int, near_misses: bool = True) -> bytes:
    out = []
    templates = _NOISE if near_misses else _ORDINARY
    for i in range(lines):
        ts = f"2024-03-11T09:{(i // 60) % 60:02d}:{i % 60:02d}.{rng.randrange(1000):03d}Z"
        out.append(rng.choice(templates).format(ts=ts, mod=rng.choice(_MODS),
                                             name=rng.choice(_NAMES), n=rng.randrange(1, 999)))
    return ("\n".join(out) + "\n").encode()


def generate(path: Path, size_mb: int, position: str, seed: int = 42,
             near_misses: bool = True) -> None:
    """A seeded CI log of about size_mb, the cause near the end, at the start, or absent."""
    rng = random.Random(seed)
    blocks = [_noise_block(rng, 4000, near_misses) for _ in range(8)]  # ~0.4 MB each, reused
    target = size_mb * CHUNK
    cause = ("\n".join(_CAUSES[position]) + "\n").encode() if _CAUSES[position] else b""
    written = 0
    with open(path, "wb") as handle:
        if position == "start":
            handle.write(blocks[0][:2000] + cause)
            written += 2000 + len(cause)
        while written < target - (200_000 if position == "end" else 0):
            block = blocks[rng.randrange(len(blocks))]
            handle.write(block)
            written += len(block)
        if position == "end":
            handle.write(cause + blocks[1][:150_000])


def _vm(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return True


def child(engine: str, path: str, pad: int) -> dict[str, Any]:
    """Runs in its own process: end-to-end classification of one file, peak RSS above baseline."""
    from pipeline_recovery.classifier import Classifier
    from pipeline_recovery.patterns import build_rule, load_rules
    from pipeline_recovery.scan_engines import build_engine

    rules = load_rules()
    for i in range(max(0, pad - len(rules))):
        rules.append(build_rule({
            "id": f"pad-{i}", "category": "compile-error", "priority": 50,
            "regex": f"acme-tool-{i} failed: (?P<why>\\w+) in stage {i}",
            "solution": "pad"}, "pad", i))
    clf = Classifier(rules, build_engine(rules, engine))
    best, verdict, diag_line = float("inf"), "", None
    size = os.path.getsize(path)
    rounds = 3 if size <= 20 * CHUNK else 1
    peak_ok = _reset_peak()
    base = _vm("VmRSS")
    for _ in range(rounds):
        start = time.perf_counter()
        stream = clf.open_stream(container="build")
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                stream.feed(chunk)
        diag = clf.diagnose([stream.finish()])
        best = min(best, time.perf_counter() - start)
        ev = diag.evidence
        verdict, diag_line = diag.category, (ev.pattern_id, ev.line) if ev else None
    peak = _vm("VmHWM") if peak_ok else _vm("VmRSS")
    return {"engine": clf.engine_name, "seconds": best, "bytes": size, "category": verdict,
            "evidence": diag_line, "rss_above_baseline": max(0, peak - base), "rules": len(rules)}


def _naive(path: Path, literals: tuple[bytes, ...]) -> float:
    start = time.perf_counter()
    hits = 0
    with open(path, "rb") as handle:
        for line in handle:
            for literal in literals:
                if literal in line:
                    hits += 1
    return time.perf_counter() - start


def _floor(path: Path) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                chunk.count(b"\n")
        best = min(best, time.perf_counter() - start)
    return best


def _run_child(engine: str, path: Path, pad: int = 0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.bench_classifier", "--child", engine, str(path), str(pad)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "child failed")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def _available_engines() -> list[str]:
    """The engines this machine has, fastest first (ENGINES order, as `auto` tries them)."""
    from pipeline_recovery.patterns import load_rules
    from pipeline_recovery.scan_engines import ENGINES, build_engine

    rules, found = load_rules(), []
    for name in ENGINES:
        try:
            build_engine(rules, name)
        except ImportError:
            print(f"({name} engine not available here: not measured)")
            continue
        found.append(name)
    return found


def _mbps(result: dict[str, Any]) -> float:
    return float(result["bytes"]) / CHUNK / float(result["seconds"])


def main() -> int:
    from pipeline_recovery.patterns import load_rules
    from pipeline_recovery.scan_engines import required_literals

    project_literals = tuple(dict.fromkeys(
        lit for rule in load_rules() for lit in required_literals(rule.regex)[0]))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="bench-classifier-") as tmp:
        files: dict[tuple[int, str], Path] = {}
        for size in SIZES_MB:
            for position in POSITIONS:
                path = Path(tmp) / f"ci-{size}mb-{position}.log"
                generate(path, size, position)
                files[size, position] = path
        print(f"{'engine':<10}{'size':>6} {'cause':<7}{'verdict':<15}{'MB/s':>8}"
              f"{'RSS+MB':>8}  evidence")
        results: dict[tuple[str, int, str], dict[str, Any]] = {}
        engines = _available_engines()
        best = engines[0]  # what `auto` picks: the figures the goals are judged on
        for engine in engines:
            for (size, position), path in files.items():
                if (engine == "re2" and size > 10) or (engine == "re" and size > 1):
                    continue  # the fallbacks are measured on the smaller logs only
                res = _run_child(engine, path)
                results[engine, size, position] = res
                ok = res["category"] == EXPECTED[position]
                failures += 0 if ok else 1
                print(f"{res['engine']:<10}{size:>4}MB {position:<7}{res['category']:<15}"
                      f"{_mbps(res):>8.0f}{res['rss_above_baseline'] / CHUNK:>8.1f}  "
                      f"{res['evidence']}{'' if ok else '  WRONG VERDICT'}")
        ref = files[1, "end"]
        hs_mbps = _mbps(results[best, 1, "end"])
        mb = ref.stat().st_size / CHUNK
        seed_mbps = mb / _naive(ref, SEED_LITERALS)
        own_mbps = mb / _naive(ref, project_literals)
        floor_mbps = mb / _floor(ref)
        print("\nbaselines on the 1 MB log (same bytes, streamed from the page cache):")
        print(f"  naive substring loop, seed's 4 literals:      {seed_mbps:8.0f} MB/s "
              f"-> {best} is {hs_mbps / seed_mbps:6.1f}x")
        print(f"  naive substring loop, {len(project_literals)} project literals:  "
              f"{own_mbps:8.0f} MB/s -> {best} is {hs_mbps / own_mbps:6.1f}x")
        print(f"  bytes.count(b'\\n') floor:                    {floor_mbps:8.0f} MB/s "
              f"-> {best} is {hs_mbps / floor_mbps:5.2f}x of it")
        ref = files[10, "end"]
        print(f"\nscaling ({best}, 10 MB log, cause at end):")
        for pad in (300, 1000):
            res = _run_child(best, ref, pad)
            failures += 0 if res["category"] == "network" else 1
            print(f"  {res['rules']:>5} rules: {_mbps(res):8.0f} MB/s  verdict {res['category']}")
        ordinary = Path(tmp) / "ci-100mb-end-ordinary.log"
        generate(ordinary, 100, "end", near_misses=False)
        res = _run_child(best, ordinary)
        failures += 0 if res["category"] == "network" else 1
        print(f"\nfor reference, {best} on 100 MB of ordinary build output (the noise lines "
              f"without the {len(_NEAR_MISSES)} near-miss kinds): {_mbps(res):.0f} MB/s, "
              f"verdict {res['category']}; the goals are judged on the logs above")
        # The slowest position is what a user can count on.
        big = min(_mbps(results[best, 100, p]) for p in POSITIONS)
        peak = max(r["rss_above_baseline"] for r in results.values()) / CHUNK
        print("\ngoals:")
        checks = (
            (f"end to end >= 1 GB/s ({best}, 100 MB, slowest position)", big >= GOALS["mbps"],
             f"{big:.0f} MB/s"),
            (">= 50x naive loop over project literals", hs_mbps / own_mbps >= GOALS["naive_ratio"],
             f"{hs_mbps / own_mbps:.0f}x"),
            (">= 0.3x bytes.count floor", hs_mbps / floor_mbps >= GOALS["floor_ratio"],
             f"{hs_mbps / floor_mbps:.2f}x"),
            ("<= 16 MB above baseline", peak <= GOALS["rss_mb"], f"{peak:.1f} MB"),
        )
        for name, met, value in checks:
            print(f"  [{'met' if met else 'MISSED'}] {name}: {value}")
    print(f"\nverdicts: {'all right' if not failures else f'{failures} WRONG'}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
        sys.exit(0)
    sys.exit(main())
