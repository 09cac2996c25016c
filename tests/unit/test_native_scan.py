"""The native scan loop (C, libhs) against the pure-Python paths it stands in for."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from pipeline_recovery import native
from pipeline_recovery.classifier import Classifier
from pipeline_recovery.cleaning import CSI_PATTERN, RAW_WARNING_PATTERN, is_raw_warning
from pipeline_recovery.patterns import PatternError, build_rule, load_rules
from pipeline_recovery.scan_engines import (
    KEEP,
    NATIVE_LIMIT,
    SKIP_ALL,
    SKIP_WARNINGS,
    build_engine,
)

HS_HEADER = Path("/usr/include/hs/hs.h")


def _native() -> object:
    if native.NATIVE is None:
        pytest.skip("the native extension is not built here (no libhs headers at install)")
    return native.NATIVE


def test_native_extension_is_built_wherever_libhs_is_installed() -> None:
    # CI installs libvectorscan-dev so that this path is really exercised there.
    assert native.NATIVE is not None or not HS_HEADER.exists(), (
        "libhs headers are installed but pipeline_recovery._native_scan was not built: "
        "reinstall the package (pip install -e .) to compile it")


_PIECES = (b"npm ", b"ERR! ", b"code ", b"\x1b[31m", b"\x1b[0m", b"\x1b[38;5;12m", b"\x1b[2K",
           b"\x1b[?25l", b"\x1b]8;;http://x\x1b\\", b"\x1b", b"[", b"31", b"m", b"\n", b"\r",
           b"\x00", b"\xff\xfe", b"ok", b" ", b";")


@pytest.mark.parametrize("seed", range(40))
def test_strip_into_matches_the_regex_even_across_the_carry_boundary(seed: int) -> None:
    mod = _native()
    rng = random.Random(seed)
    data = b"".join(rng.choice(_PIECES) for _ in range(rng.randrange(0, 400)))
    cut = rng.randrange(0, len(data) + 1)  # a code may straddle the carried head and the body
    head, body = data[:cut], b"prefix" + data[cut:] + b"suffix"
    out = bytearray(b"stale bytes from the last block" * rng.randrange(0, 3))
    lines = mod.strip_into(out, head, body, 6, len(body) - 6)  # type: ignore[attr-defined]
    assert bytes(out) == re.sub(CSI_PATTERN, b"", data) and lines == data.count(b"\n")


def test_strip_into_fallback_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"\x1b[1mnpm\x1b[22m \x1b[31mERR!\x1b[39m code ELIFECYCLE\n\x1b[2Kdone\n"
    expected = b"npm ERR! code ELIFECYCLE\ndone\n"
    monkeypatch.setattr(native, "_native", None)
    out = bytearray()
    assert native.strip_into(out, data[:5], data, 5, len(data)) == 2
    assert bytes(out) == expected
    assert native.count_lines(out, 0, len(out)) == 2


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 1000, 65_537])
def test_count_lines_matches_bytes_count(size: int) -> None:
    mod = _native()
    rng = random.Random(size)
    data = bytes(rng.choice(b"ab\n\r") for _ in range(size))
    for start, end in ((0, size), (size // 3, size - size // 5), (size, size), (5, 2)):
        expected = data.count(b"\n", start, end) if end > start else 0
        assert mod.count_lines(data, start, end) == expected  # type: ignore[attr-defined]


_LINES = [
    b"12:00:01 npm WARN optional SKIPPING fsevents: ENOENT skipped",
    b"npm WARN enoent ENOENT: no such file or directory",
    b"warning: ENOENT in cache",
    b"[WARNING] ENOENT again",
    b"2024-03-11T09:00:00Z ::warning ENOENT",
    b"WARN\tENOENT",
    b"WARNING ENOENT",
    b"W1234 ENOENT",
    b"WARNINGS ENOENT",  # not a mark: WARN must end at punctuation or space
    b"a b c npm WARN ENOENT",  # three tokens before the mark: not surely a warning
    b"npm WARN ENOENT\r npm ERR! ENOENT",  # a carriage return: cleaning keeps the last frame
    b"Error: ENOENT: no such file or directory",
    b"npm ERR! enoent ENOENT",
    b"\xff\xfe WARN ENOENT",
    b"ENOENT",
]


def test_native_warning_filter_is_is_raw_warning() -> None:
    mod = _native()
    scanner = mod.Scanner([b"ENOENT"], b"^" + RAW_WARNING_PATTERN)  # type: ignore[attr-defined]
    block = b"\n".join(_LINES) + b"\n"
    starts = [0]
    for line in _LINES[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    kept, resume = scanner.scan(block, 0, bytes([SKIP_WARNINGS]), 1000)
    expected = [(s, 0) for s, line in zip(starts, _LINES, strict=True)
                if not is_raw_warning(block, s, s + len(line))]
    assert resume == -1 and sorted(kept) == expected
    assert len(expected) == 7  # the filter drops some lines and keeps others
    everything, _ = scanner.scan(block, 0, bytes([KEEP]), 1000)
    assert sorted(everything) == [(s, 0) for s in starts]
    assert scanner.scan(block, 0, bytes([SKIP_ALL]), 1000) == ([], -1)


def test_native_scan_resumes_after_each_batch_without_losing_or_repeating_lines() -> None:
    mod = _native()
    scanner = mod.Scanner([b"alpha", b"beta"], b"^WARN")  # type: ignore[attr-defined]
    lines = [b"alpha beta alpha" if i % 3 == 0 else b"noise" if i % 3 == 1 else b"beta"
             for i in range(1000)]
    block = b"\n".join(lines) + b"\n"
    seen: list[tuple[int, int]] = []
    start, calls = 0, 0
    while start >= 0:
        found, start = scanner.scan(block, start, bytes(2), 10)
        seen.extend(sorted(found))
        calls += 1
    offsets = [0]
    for line in lines[:-1]:
        offsets.append(offsets[-1] + len(line) + 1)
    expected = sorted((offsets[i], rule) for i, line in enumerate(lines)
                      for rule, word in enumerate((b"alpha", b"beta")) if word in line)
    assert seen == expected and calls > len(expected) // 12


def test_a_log_with_many_candidates_gets_the_same_scan_on_every_engine() -> None:
    _native()
    rng = random.Random(7)
    templates = [b"npm WARN tar ENOENT: no such file or directory, open '/app/x%d'",
                 b"Error: ENOENT: no such file or directory, open '/tmp/f%d'",
                 b"curl: (7) Failed to connect to host%d port 443",
                 b"\x1b[33mwarning:\x1b[0m unused variable x%d", b"step %d ok"]
    data = b"\n".join(rng.choice(templates) % i for i in range(5 * NATIVE_LIMIT * 20)) + b"\n"
    scans = {}
    for name in ("native", "hyperscan", "re2", "re"):
        clf = Classifier.load(engine=name)
        scan = clf.scan_bytes(data)
        scans[name] = ([(s.rule_id, s.evidence.line, s.priority) for s in scan.signals],
                       scan.lines)
    assert scans["native"][1] == data.count(b"\n")
    assert len(scans["native"][0]) > 8
    assert all(result == scans["native"] for result in scans.values())


def test_native_compile_error_names_the_rule() -> None:
    _native()
    rules = load_rules()
    rules.append(build_rule({"id": "huge-repeat", "category": "compile-error", "priority": 50,
                             "regex": "begin [^x]{70000} end", "solution": "none"},
                            "acme.yaml", 0))
    with pytest.raises(PatternError, match=r"^acme\.yaml: rule huge-repeat: hyperscan: "):
        build_engine(rules, "native")


@pytest.mark.parametrize("engine", ["native", "re2"])
def test_a_pooled_block_buffer_carries_nothing_into_the_next_log(engine: str) -> None:
    from pipeline_recovery import scanning

    if engine == "native":
        _native()
    clf = Classifier.load(engine=engine)
    first = clf.open_stream()
    first.feed(b"step 1\n" * 5000 + b"npm ERR! code ENOENT\n\x1b[31mmore\x1b[0m\n")
    first.finish()
    pooled = scanning._POOL[-1]
    second = clf.open_stream()
    assert second._block is pooled  # the finished stream's buffer, with its old bytes
    second.feed(b"all good\npartial")
    scan = second.finish()
    assert scan.signals == [] and scan.lines == 2 and scan.tail == ["all good", "partial"]


def test_a_stream_fed_huge_chunks_does_not_park_its_buffer_in_the_pool() -> None:
    from pipeline_recovery import scanning

    clf = Classifier.load(engine="re2")
    scanning._POOL.clear()
    stream = clf.open_stream()
    stream.feed(b"x" * 100 + b"\n" + b"step ok\n" * 600_000)  # one 4.8 MB block, kept to the end
    stream.finish()
    assert scanning._POOL == []
    small = clf.open_stream()
    small.feed(b"step ok\n" * 1000)
    small.finish()
    assert len(scanning._POOL) == 1


@pytest.mark.parametrize("size", [4079, 4080, 4081, 100_003])
def test_newline_counters_do_not_wrap_on_a_block_of_newlines(size: int) -> None:
    # Byte-wide counters are summed every 255 vectors; a block of only newlines fills them.
    mod = _native()
    data = b"\n" * size
    out = bytearray()
    assert mod.count_lines(data, 0, size) == size  # type: ignore[attr-defined]
    assert mod.strip_into(out, b"\n\x1b[1m", data, 0, size) == size + 1  # type: ignore[attr-defined]
    assert bytes(out) == b"\n" + data
