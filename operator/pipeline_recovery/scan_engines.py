"""Multi-pattern scan engines: native Hyperscan loop, Hyperscan binding, RE2 Set, guarded `re`."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pipeline_recovery.literals import required_literals
from pipeline_recovery.patterns import PatternError, Rule
from pipeline_recovery.scan_forms import scan_form

__all__ = ["ENGINES", "Candidates", "Engine", "EngineStream", "build_engine", "required_literals",
           "scan_form"]


def engine_patterns(rules: Sequence[Rule]) -> list[str]:
    """The scan form of every rule, in rule order (an engine's pattern id is the rule index)."""
    return [scan_form(rule.regex) for rule in rules]


Hits = list[tuple[int, int]]  # (rule index, end offset of a match in the block), any order
Candidates = list[tuple[int, int]]  # (line start in the block, rule index), sorted, unique

# Skip levels the stream passes per rule (only the native engine acts on them; the stream
# applies the same tests itself, so every engine gives the same verdicts).
KEEP, SKIP_WARNINGS, SKIP_ALL = 0, 1, 2
NATIVE_LIMIT = 64  # candidates per native call before the stream refreshes the skip levels


class EngineStream(Protocol):
    def scan(self, block: bytes | bytearray, start: int, skip: bytearray) -> tuple[Candidates, int]:
        """Candidate lines from block[start:] on, and where to call again (-1: done)."""
        ...

    def close(self) -> None: ...


class Engine(Protocol):
    name: str

    def open(self) -> EngineStream: ...


def candidates(block: bytes | bytearray, hits: Hits) -> Candidates:
    """One candidate per rule and line, in line order (rule order within a line)."""
    rfind = block.rfind
    return sorted({(rfind(b"\n", 0, end) + 1, index) for index, end in hits})


def _in_one_call(block: bytes | bytearray, start: int,
                 hits_of: Callable[[bytes | bytearray], Hits]) -> tuple[Candidates, int]:
    """For engines without a resumable loop: block[start:] scanned at once, then done."""
    hits = hits_of(block[start:] if start else block)
    if start:
        hits = [(index, end + start) for index, end in hits]
    return candidates(block, hits), -1


class _NativeStream:
    def __init__(self, engine: NativeEngine) -> None:
        self._engine = engine

    def scan(self, block: bytes | bytearray, start: int, skip: bytearray) -> tuple[Candidates, int]:
        engine = self._engine
        with engine.lock:  # a scanner's scratch space serves one scan at a time
            found, resume = engine.scanner.scan(block, start, skip, NATIVE_LIMIT)
        found.sort()
        return found, resume

    def close(self) -> None:
        return None


_NATIVE_CACHE: dict[tuple[str, ...], tuple[Any, threading.Lock]] = {}


class NativeEngine:
    """Hyperscan through the project's C loop (`_native_scan`, linked to the system libhs):
    matches are kept or dropped in C, and the stream resumes it after each batch."""

    name = "native"

    def __init__(self, rules: Sequence[Rule]) -> None:
        from pipeline_recovery.cleaning import RAW_WARNING_PATTERN
        from pipeline_recovery.native import NATIVE

        if NATIVE is None:
            raise ImportError("the native scan extension is not built (needs libhs at install)")
        exprs = engine_patterns(rules)
        key = tuple(exprs)
        cached = _NATIVE_CACHE.get(key)
        if cached is None:
            try:
                scanner = NATIVE.Scanner([e.encode() for e in exprs], b"^" + RAW_WARNING_PATTERN)
            except ValueError as exc:
                index, _, message = str(exc).partition(": ")
                rule = rules[int(index)] if index.isdigit() and int(index) < len(rules) else None
                where = f"{rule.source}: rule {rule.id}" if rule else "pattern table"
                raise PatternError(f"{where}: hyperscan: {message}") from None
            cached = _NATIVE_CACHE[key] = (scanner, threading.Lock())
        self.scanner, self.lock = cached

    def open(self) -> EngineStream:
        return _NativeStream(self)


class _HsStream:
    def __init__(self, engine: HyperscanEngine) -> None:
        self._engine = engine
        self._hits: Hits = []
        append = self._hits.append

        # Runs once per match, in C's callback: keep it to one append.
        def on_match(pattern: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            append((pattern, end))

        # The binding keeps no reference to the handler: hold it here for every call.
        self._handler = on_match

    def scan(self, block: bytes | bytearray, start: int, skip: bytearray) -> tuple[Candidates, int]:
        found = _in_one_call(block, start, self._hits_of)
        self._hits.clear()
        return found

    def _hits_of(self, data: bytes | bytearray) -> Hits:
        engine = self._engine
        with engine.lock:  # a database's scratch space serves one scan at a time
            engine.db.scan(data, match_event_handler=self._handler)
        return self._hits

    def close(self) -> None:
        return None


# Compiling the table takes a fraction of a second; a process reuses the database (and the
# lock that guards its scratch space) for every Classifier built from the same table.
_HS_CACHE: dict[tuple[str, ...], tuple[Any, threading.Lock]] = {}


def _hs_compile(hyperscan: Any, rules: Sequence[Rule], exprs: Sequence[str]) -> Any:
    flag = hyperscan.HS_FLAG_MULTILINE
    encoded = [expr.encode() for expr in exprs]
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=encoded, ids=list(range(len(encoded))),
                   elements=len(encoded), flags=[flag] * len(encoded))
    except hyperscan.error:
        for index, expr in enumerate(encoded):
            try:
                hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK).compile(
                    expressions=[expr], ids=[0], elements=1, flags=[flag])
            except hyperscan.error as exc:
                rule = rules[index]
                raise PatternError(f"{rule.source}: rule {rule.id}: hyperscan: {exc}") from None
        raise
    return db


class HyperscanEngine:
    """A block-mode database of every scan form (PyPI `hyperscan`); each block is scanned in
    one call, and every match comes back through a Python callback."""

    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule]) -> None:
        import hyperscan

        exprs = engine_patterns(rules)
        key = tuple(exprs)
        cached = _HS_CACHE.get(key)
        if cached is None:
            db = _hs_compile(hyperscan, rules, exprs)
            cached = _HS_CACHE[key] = (db, threading.Lock())
        self.db, self.lock = cached

    def open(self) -> EngineStream:
        return _HsStream(self)


class _BlockStream:
    def __init__(self, engine: Re2Engine | ReEngine) -> None:
        self._engine = engine

    def scan(self, block: bytes | bytearray, start: int, skip: bytearray) -> tuple[Candidates, int]:
        return _in_one_call(block, start, self._engine.scan_block)

    def close(self) -> None:
        return None


class Re2Engine:
    name = "re2"

    def __init__(self, rules: Sequence[Rule]) -> None:
        import re2

        options = re2.Options()
        options.max_mem = 64 << 20
        options.encoding = re2.Options.Encoding.LATIN1  # logs are bytes, not always UTF-8
        self._set = re2.Set.SearchSet(options)
        self._regexes = []
        for form in engine_patterns(rules):
            self._set.Add(form.encode())
            self._regexes.append(re2.compile(form.encode(), options))
        self._set.Compile()

    def scan_block(self, block: bytes | bytearray) -> Hits:
        hits: Hits = []
        for index in self._set.Match(block) or ():
            hits.extend((index, m.end()) for m in self._regexes[index].finditer(block))
        return hits

    def open(self) -> EngineStream:
        return _BlockStream(self)


class ReEngine:
    name = "re"

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules: list[tuple[int, re.Pattern[bytes], tuple[bytes, ...], bool]] = []
        for index, form in enumerate(engine_patterns(rules)):
            literals, caseless = required_literals(form)
            self._rules.append((index, re.compile(form.encode(), re.MULTILINE), literals,
                                caseless))

    def scan_block(self, block: bytes | bytearray) -> Hits:
        """Each rule runs only on the lines that hold one of its literals (a form never spans
        lines), not on the whole block: one pass of `re` per rule per block made this
        engine about 1 MB/s."""
        hits: Hits = []
        lowered: bytes | bytearray | None = None
        size = len(block)
        for index, form, literals, caseless in self._rules:
            if not literals:
                hits.extend((index, m.end()) for m in form.finditer(block))
                continue
            haystack = block
            if caseless:
                if lowered is None:
                    lowered = block.lower()
                haystack = lowered
            done: set[int] = set()
            for literal in literals:
                at = haystack.find(literal)
                while at >= 0:
                    start = block.rfind(b"\n", 0, at) + 1
                    end = block.find(b"\n", at)
                    end = size if end < 0 else end
                    if start not in done:
                        done.add(start)
                        match = form.search(block, start, end)
                        if match is not None:
                            hits.append((index, match.end()))
                    at = haystack.find(literal, end + 1)
        return hits

    def open(self) -> EngineStream:
        return _BlockStream(self)


ENGINES = ("native", "hyperscan", "re2", "re")


def build_engine(rules: Sequence[Rule], name: str = "auto") -> Engine:
    """The fastest engine available (or the one named); ImportError if that one is missing."""
    order = ENGINES if name == "auto" else (name,)
    last: Exception | None = None
    for candidate in order:
        try:
            if candidate == "native":
                return NativeEngine(rules)
            if candidate == "hyperscan":
                return HyperscanEngine(rules)
            if candidate == "re2":
                return Re2Engine(rules)
            return ReEngine(rules)
        except ImportError as exc:
            last = exc
    raise ImportError(f"scan engine {name!r} is not available: {last}")
