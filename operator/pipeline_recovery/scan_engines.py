"""Multi-pattern scan engines (Hyperscan stream mode, RE2 Set, `re` with a literal prefilter)."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from pipeline_recovery.patterns import PatternError, Rule

# Colour codes may sit where a rule has whitespace, so the scan form tolerates them there;
# the confirming match runs on the cleaned line with the rule's own regex.
_ANSI_OPT = r"(?:\x1b\[[0-9;]*m)*"
_SPACE = f"(?:{_ANSI_OPT}[ \\t]{_ANSI_OPT})"
_WS = f"(?:{_ANSI_OPT}[ \\t\\r\\f\\v]{_ANSI_OPT})"


def scan_form(regex: str) -> str:
    """The rule's regex as the scanners see it: captures dropped, negated classes kept on
    one line, whitespace tolerant of colour codes, the match extended to the line's end
    so every engine reports exactly one hit per rule and line."""
    out: list[str] = []
    i, n = 0, len(regex)
    prefix = ""
    lead = re.match(r"\(\?[imsx]+\)", regex)
    if lead:
        prefix, i = lead.group(0), lead.end()
    while i < n:
        ch = regex[i]
        if ch == "\\" and i + 1 < n:
            nxt = regex[i + 1]
            if nxt == "x":
                out.append(regex[i:i + 4])
                i += 4
                continue
            out.append(_WS if nxt == "s" else regex[i:i + 2])
            i += 2
        elif ch == "[":
            j = i + 1
            negated = j < n and regex[j] == "^"
            if negated:
                j += 1
            if j < n and regex[j] == "]":
                j += 1
            while j < n and regex[j] != "]":
                j += 2 if regex[j] == "\\" else 1
            body = regex[i + 1:j]
            out.append("[^\\n" + body[1:] + "]" if negated else "[" + body + "]")
            i = j + 1
        elif regex.startswith("(?P<", i):
            out.append("(?:")
            i = regex.index(">", i) + 1
        elif ch == " ":
            out.append(_SPACE)
            i += 1
        elif ch == "$":
            i += 1  # the scan form runs on to the newline anyway; the confirming match checks
        else:
            out.append(ch)
            i += 1
    return f"{prefix}(?:{''.join(out)})[^\\n]*\\n"


_PARSER: Any = getattr(re, "_parser")  # noqa: B009  (private, but the only parser of `re` syntax)
_LITERAL: Any = getattr(re, "_constants").LITERAL  # noqa: B009
_BRANCH: Any = getattr(re, "_constants").BRANCH  # noqa: B009
_SUBPATTERN: Any = getattr(re, "_constants").SUBPATTERN  # noqa: B009

Hits = list[tuple[int, int]]  # (rule index, offset just past the line's newline in the block)


class EngineStream(Protocol):
    def scan(self, block: bytes) -> Hits: ...

    def close(self) -> None: ...


class Engine(Protocol):
    name: str

    def open(self) -> EngineStream: ...


class _HsStream:
    def __init__(self, engine: HyperscanEngine) -> None:
        self._engine = engine
        self._base = 0
        self._hits: Hits = []
        # The binding keeps no reference to the handler or database: hold both here and
        # hand the handler to every call, or the C side calls freed memory.
        self._handler = self._on_match
        self._stream: Any = engine.db.stream(match_event_handler=self._handler)
        self._stream.__enter__()

    def _on_match(self, rule: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
        self._hits.append((rule, end - self._base))

    def scan(self, block: bytes) -> Hits:
        self._hits = []
        with self._engine.lock:  # a database's scratch space serves one scan at a time
            self._stream.scan(block, match_event_handler=self._handler)
        self._base += len(block)
        return self._hits

    def close(self) -> None:
        with self._engine.lock:
            self._stream.close(match_event_handler=self._handler)


# Compiling ~150 rules takes a second or two; a process reuses the database (and the lock
# that guards its scratch space) for every Classifier built from the same table.
_HS_CACHE: dict[tuple[bytes, ...], tuple[Any, threading.Lock]] = {}


def _hs_compile(hyperscan: Any, rules: Sequence[Rule], exprs: Sequence[bytes]) -> Any:
    flag = hyperscan.HS_FLAG_MULTILINE
    db = hyperscan.Database(mode=hyperscan.HS_MODE_STREAM)
    try:
        db.compile(expressions=list(exprs), ids=list(range(len(exprs))),
                   elements=len(exprs), flags=[flag] * len(exprs))
    except hyperscan.error:
        for rule, expr in zip(rules, exprs, strict=True):
            try:
                hyperscan.Database(mode=hyperscan.HS_MODE_STREAM).compile(
                    expressions=[expr], ids=[0], elements=1, flags=[flag])
            except hyperscan.error as exc:
                raise PatternError(f"{rule.source}: rule {rule.id}: hyperscan: {exc}") from None
        raise
    return db


class HyperscanEngine:
    name = "hyperscan"

    def __init__(self, rules: Sequence[Rule]) -> None:
        import hyperscan

        exprs = tuple(scan_form(rule.regex).encode() for rule in rules)
        cached = _HS_CACHE.get(exprs)
        if cached is None:
            cached = _HS_CACHE[exprs] = (_hs_compile(hyperscan, rules, exprs), threading.Lock())
        self.db, self.lock = cached

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
        for rule in rules:
            form = "(?m)" + scan_form(rule.regex)
            self._set.Add(form.encode())
            self._regexes.append(re2.compile(form.encode(), options))
        self._set.Compile()

    def scan_block(self, block: bytes) -> Hits:
        hits: Hits = []
        for index in self._set.Match(block) or ():
            hits.extend((index, m.end()) for m in self._regexes[index].finditer(block))
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
        self._rules: list[tuple[re.Pattern[bytes], tuple[bytes, ...], bool]] = []
        for rule in rules:
            form = re.compile(("(?m)" + scan_form(rule.regex)).encode())
            literals, caseless = required_literals(rule.regex)
            self._rules.append((form, literals, caseless))

    def scan_block(self, block: bytes) -> Hits:
        hits: Hits = []
        lowered: bytes | None = None
        for index, (form, literals, caseless) in enumerate(self._rules):
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
