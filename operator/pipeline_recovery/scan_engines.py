"""Multi-pattern scan engines (Hyperscan block mode, RE2 Set, `re` with a literal prefilter)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from pipeline_recovery.patterns import PatternError, Rule
from pipeline_recovery.scan_forms import scan_form

__all__ = ["ENGINES", "Engine", "EngineStream", "build_engine", "required_literals", "scan_form"]


def engine_patterns(rules: Sequence[Rule], colour: bool = True) -> tuple[list[str], list[int]]:
    """The scan form of every rule, and the index of the rule each one belongs to."""
    return [scan_form(rule.regex, colour) for rule in rules], list(range(len(rules)))


_PARSER: Any = getattr(re, "_parser")  # noqa: B009  (private, but the only parser of `re` syntax)
_LITERAL: Any = getattr(re, "_constants").LITERAL  # noqa: B009
_BRANCH: Any = getattr(re, "_constants").BRANCH  # noqa: B009
_SUBPATTERN: Any = getattr(re, "_constants").SUBPATTERN  # noqa: B009

Hits = list[tuple[int, int]]  # (rule index, end offset of a match in the block), any order


class EngineStream(Protocol):
    def scan(self, block: bytes) -> Hits: ...

    def close(self) -> None: ...


class Engine(Protocol):
    name: str

    def open(self) -> EngineStream: ...


class _HsStream:
    def __init__(self, engine: HyperscanEngine) -> None:
        self._engine = engine
        self._hits: Hits = []
        owners = engine.owners
        append = self._hits.append

        # Runs once per match, in C's callback: keep it to one append.
        def on_match(pattern: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            append((owners[pattern], end))

        # The binding keeps no reference to the handler: hold it here for every call.
        self._handler = on_match

    def scan(self, block: bytes) -> Hits:
        self._hits.clear()
        engine = self._engine
        # Without an escape byte no colour code can split a phrase: the plain forms suffice.
        db = engine.db if b"\x1b" in block else engine.plain_db
        with engine.lock:  # a database's scratch space serves one scan at a time
            db.scan(block, match_event_handler=self._handler)
        hits = list(self._hits)
        self._hits.clear()
        return hits

    def close(self) -> None:
        return None


# Compiling the table takes a fraction of a second; a process reuses the database (and the
# lock that guards its scratch space) for every Classifier built from the same table.
_HS_CACHE: dict[tuple[str, ...], tuple[Any, Any, threading.Lock]] = {}


def _hs_compile(hyperscan: Any, rules: Sequence[Rule], exprs: Sequence[str],
                owners: Sequence[int]) -> Any:
    flag = hyperscan.HS_FLAG_MULTILINE
    encoded = [expr.encode() for expr in exprs]
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=encoded, ids=list(range(len(encoded))),
                   elements=len(encoded), flags=[flag] * len(encoded))
    except hyperscan.error:
        for owner, expr in zip(owners, encoded, strict=True):
            try:
                hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK).compile(
                    expressions=[expr], ids=[0], elements=1, flags=[flag])
            except hyperscan.error as exc:
                rule = rules[owner]
                raise PatternError(f"{rule.source}: rule {rule.id}: hyperscan: {exc}") from None
        raise
    return db


class HyperscanEngine:
    """Block-mode databases of every scan form (colour-tolerant, and plain for blocks without
    escape bytes); each block is scanned in one call."""

    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule]) -> None:
        import hyperscan

        exprs, self.owners = engine_patterns(rules)
        key = tuple(exprs)
        cached = _HS_CACHE.get(key)
        if cached is None:
            db = _hs_compile(hyperscan, rules, exprs, self.owners)
            plain = _hs_compile(hyperscan, rules, engine_patterns(rules, False)[0], self.owners)
            cached = _HS_CACHE[key] = (db, plain, threading.Lock())
        self.db, self.plain_db, self.lock = cached

    def open(self) -> EngineStream:
        return _HsStream(self)


class _BlockStream:
    def __init__(self, engine: Re2Engine | ReEngine) -> None:
        self._engine = engine

    def scan(self, block: bytes) -> Hits:
        return self._engine.scan_block(block)

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
        patterns, self._owners = engine_patterns(rules)
        for form in patterns:
            self._set.Add(form.encode())
            self._regexes.append(re2.compile(form.encode(), options))
        self._set.Compile()

    def scan_block(self, block: bytes) -> Hits:
        hits: Hits = []
        for index in self._set.Match(block) or ():
            owner = self._owners[index]
            hits.extend((owner, m.end()) for m in self._regexes[index].finditer(block))
        return hits

    def open(self) -> EngineStream:
        return _BlockStream(self)


def _longest_run(seq: Any) -> str:
    best, run = "", ""
    for op, arg in seq:
        if op is _LITERAL and chr(arg) not in " \t":
            run += chr(arg)
            continue
        best, run = max(best, run, key=len), ""
    return max(best, run, key=len)


def _alternatives(seq: Any) -> list[str] | None:
    """Literals one of which every match of seq contains (None when unknown)."""
    run = _longest_run(seq)
    if len(run) >= 3:
        return [run]
    for op, arg in seq:
        found: list[str] | None = None
        if op is _BRANCH:
            parts = [_alternatives(branch) for branch in arg[1]]
            found = None if any(p is None for p in parts) else [x for p in parts for x in p or ()]
        elif op is _SUBPATTERN:
            found = _alternatives(arg[-1])
        if found:
            return found
    return [run] if len(run) >= 2 else None


def required_literals(regex: str) -> tuple[tuple[bytes, ...], bool]:
    """Literals (no spaces) of which every match contains at least one, and whether to
    compare them case-insensitively; () when there are none (the rule always runs)."""
    parsed = _PARSER.parse(regex)
    caseless = bool(parsed.state.flags & re.IGNORECASE)
    found = _alternatives(list(parsed))
    if not found or not all(x.isascii() for x in found):
        return (), caseless
    return tuple(dict.fromkeys((x.lower() if caseless else x).encode() for x in found)), caseless


class ReEngine:
    name = "re"

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules: list[tuple[int, re.Pattern[bytes], tuple[bytes, ...], bool]] = []
        patterns, owners = engine_patterns(rules)
        for form, owner in zip(patterns, owners, strict=True):
            literals, caseless = required_literals(form)
            self._rules.append((owner, re.compile(form.encode()), literals, caseless))

    def scan_block(self, block: bytes) -> Hits:
        hits: Hits = []
        lowered: bytes | None = None
        for index, form, literals, caseless in self._rules:
            if literals:
                if caseless:
                    lowered = block.lower() if lowered is None else lowered
                    haystack = lowered
                else:
                    haystack = block
                if not any(literal in haystack for literal in literals):
                    continue
            hits.extend((index, m.end()) for m in form.finditer(block))
        return hits

    def open(self) -> EngineStream:
        return _BlockStream(self)


ENGINES = ("hyperscan", "re2", "re")


def build_engine(rules: Sequence[Rule], name: str = "auto") -> Engine:
    """The fastest engine available (or the one named); ImportError if that one is missing."""
    order = ENGINES if name == "auto" else (name,)
    last: Exception | None = None
    for candidate in order:
        try:
            if candidate == "hyperscan":
                return HyperscanEngine(rules)
            if candidate == "re2":
                return Re2Engine(rules)
            return ReEngine(rules)
        except ImportError as exc:
            last = exc
    raise ImportError(f"scan engine {name!r} is not available: {last}")
