"""Streaming log scan: byte chunks in, bounded candidate lines, context windows and tail out."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline_recovery.cleaning import (
    MAX_LINE_BYTES,
    clean_line,
    is_raw_warning,
    is_warning_line,
    split_lines,
)
from pipeline_recovery.model import Evidence, Signal
from pipeline_recovery.native import count_lines, strip_into
from pipeline_recovery.patterns import Rule
from pipeline_recovery.scan_engines import SKIP_ALL, SKIP_WARNINGS, Candidates, Engine

PER_RULE_CAP = 4  # confirmed hits kept per rule (earliest first)
WEAK_PER_RULE_CAP = 2  # hits on warning lines kept per rule
TOTAL_CAP = 256
WINDOW_CAP = 48  # candidates that get a context window while scanning
BEFORE, AFTER = 3, 3
CONTEXT_BYTES = 8 * 1024
TAIL_BYTES = 64 * 1024
WEAK_DIVISOR = 4  # a hit on a line the tool marks as a warning keeps a quarter of its priority
POOLED_BUFFERS = 4
CHUNK_HINT = 1 << 20  # blocks of a bigger feed are not worth keeping (capped at twice this)

# Block buffers of finished streams, for the next ones: a fresh megabyte buffer per log costs
# page faults on every first write (about 0.4 ms per MB), more than stripping it does.
_POOL: list[bytearray] = []  # list.pop/append are atomic: safe across threads


@dataclass
class LogScan:
    """What one log stream left behind: candidate signals, windows, tail lines and counts."""

    source: str
    container: str | None
    engine: str
    signals: list[Signal] = field(default_factory=list)
    windows: list[tuple[int, list[str]]] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)
    bytes_scanned: int = 0
    lines: int = 0
    candidate_windows: dict[int, tuple[int, list[str]]] = field(default_factory=dict, repr=False)

    def window_for(self, line: int | None) -> tuple[int, list[str]] | None:
        """The context window kept around a candidate line, if any."""
        return self.candidate_windows.get(line) if line is not None else None


class LogStream:
    """Incremental scanner over one log; feed bytes in any chunking, then finish()."""

    def __init__(self, rules: Sequence[Rule], engine: Engine, *, source: str = "log",
                 container: str | None = None, tail_lines: int = 50) -> None:
        self._rules = rules
        self._engine_stream = engine.open()
        self._tail_lines = tail_lines
        self._carry = b""
        self._overflow = False
        self._prev = b""  # last bytes before the current block, for "before" context
        self._tail = b""
        # The block being scanned: one buffer for the whole stream, back to the pool at finish.
        self._block = _pooled_buffer()
        self._counts: dict[int, list[int]] = {}  # rule -> [strong hits, weak hits] kept
        self._skip = bytearray(len(rules))  # rule -> KEEP | SKIP_WARNINGS | SKIP_ALL
        self._pending: list[tuple[int, int, list[str]]] = []  # (line, lines still wanted, lines)
        self._offset = 0  # byte offset of the current block in the logical stream
        self._finished = False
        self.scan = LogScan(source=source, container=container, engine=engine.name)

    def feed(self, chunk: bytes) -> None:
        if self._finished:
            raise RuntimeError("feed() after finish()")
        size = len(chunk)
        if not size:
            return
        self.scan.bytes_scanned += size
        last = chunk.rfind(b"\n")
        if last < 0:
            self._extend_carry(chunk, 0, size)
            return
        head, start = b"", 0
        if self._carry:
            start = chunk.find(b"\n")
            self._extend_carry(chunk, 0, start)
            head = self._carry
        # The block (carried line + the chunk's complete lines) goes into the stream's one
        # reusable buffer, codes stripped; they never span a newline, so blocks stand alone.
        lines = strip_into(self._block, head, chunk, start, last + 1)
        self._carry, self._overflow = b"", False
        self._extend_carry(chunk, last + 1, size)
        self._scan_block(self._block, lines)

    def finish(self) -> LogScan:
        if not self._finished:
            if self._carry:
                self._scan_block(self._block, strip_into(self._block, self._carry, b"\n", 0, 1))
                self._carry = b""
            self._finished = True
            self._engine_stream.close()
            # getsizeof counts what the buffer holds allocated, not what it holds now.
            if len(_POOL) < POOLED_BUFFERS and sys.getsizeof(self._block) <= 2 * CHUNK_HINT:
                _POOL.append(self._block)
            self._block = bytearray()
            scan = self.scan
            scan.tail = [clean_line(raw) for raw in split_lines(self._tail)[-self._tail_lines:]]
            for line, _wanted, lines in self._pending:
                scan.candidate_windows[line] = (scan.candidate_windows[line][0], lines)
            self._pending = []
            scan.windows = _strongest_windows(scan)
        return self.scan

    def _extend_carry(self, chunk: bytes, start: int, end: int) -> None:
        # Over-long lines keep their head only, so memory stays bounded at any line length.
        room = MAX_LINE_BYTES - len(self._carry)
        if end - start > room:
            self._overflow = True
            end = start + max(room, 0)
        if end > start:
            self._carry += chunk[start:end]

    def _scan_block(self, block: bytearray, lines: int) -> None:
        if self._pending:
            self._fill_pending(block)
        scan, engine_stream, skip = self.scan, self._engine_stream, self._skip
        first_line, start = scan.lines, 0
        counted_to, line_no = 0, first_line
        # A native engine stops after a batch of candidates: confirming them may saturate a
        # rule, and the next call then drops that rule's hits in C.
        while start >= 0 and len(scan.signals) < TOTAL_CAP:
            found, start = engine_stream.scan(block, start, skip)
            if found:
                counted_to, line_no = self._confirm(block, found, counted_to, line_no)
        scan.lines = first_line + lines
        self._offset += len(block)
        if len(block) >= TAIL_BYTES:
            self._tail = bytes(block[-TAIL_BYTES:])
        else:
            self._tail = (self._tail + block)[-TAIL_BYTES:]
        self._prev = self._tail[-CONTEXT_BYTES:]

    def _confirm(self, block: bytearray, candidates: Candidates, counted_to: int,
                 line_no: int) -> tuple[int, int]:
        """Confirm candidate lines with each rule's own regex; returns how far lines were
        counted (byte offset in block) and the line count up to there."""
        scan = self.scan
        cleaned: dict[int, str] = {}
        counts_of, skip = self._counts, self._skip
        for start, index in candidates:
            if len(scan.signals) >= TOTAL_CAP:
                break
            counts = counts_of.get(index)
            if counts is None:
                counts = counts_of[index] = [0, 0]
            if skip[index] == SKIP_ALL:
                continue
            line_end = block.find(b"\n", start)
            # Most hits of a noisy rule are on warning lines once its weak slots are taken:
            # drop those before decoding when the raw line is surely a warning.
            if skip[index] == SKIP_WARNINGS and is_raw_warning(block, start, line_end):
                continue
            text = cleaned.get(start)
            if text is None:
                text = cleaned[start] = clean_line(block[start:line_end], MAX_LINE_BYTES)
            rule = self._rules[index]
            match = rule.compiled.search(text)
            if match is None:
                continue
            # Linters print their findings as warnings; elsewhere a warning is not the cause.
            weak = rule.category != "lint-failure" and is_warning_line(text)
            if counts[1 if weak else 0] >= (WEAK_PER_RULE_CAP if weak else PER_RULE_CAP):
                continue
            counts[1 if weak else 0] += 1
            if counts[1] >= WEAK_PER_RULE_CAP:
                skip[index] = SKIP_ALL if counts[0] >= PER_RULE_CAP else SKIP_WARNINGS
            line_no += count_lines(block, counted_to, start)
            counted_to = start
            number = line_no + 1
            evidence = Evidence(source="log", text=clean_line(text), line=number,
                                container=scan.container, pattern_id=rule.id,
                                captures=_captures(match))
            priority = max(1, rule.priority // WEAK_DIVISOR) if weak else rule.priority
            scan.signals.append(Signal(rule.category, rule.id, priority, evidence,
                                       offset=self._offset + start))
            if number not in scan.candidate_windows and len(scan.candidate_windows) < WINDOW_CAP:
                self._open_window(block, start, line_end, number)
        return counted_to, line_no

    def _open_window(self, block: bytearray, start: int, line_end: int, number: int) -> None:
        before_raw = self._prev + block[max(0, start - CONTEXT_BYTES):start] \
            if start < CONTEXT_BYTES else block[start - CONTEXT_BYTES:start]
        before = [clean_line(raw) for raw in split_lines(before_raw)[-BEFORE:]]
        lines = [*before, clean_line(block[start:line_end])]
        after = split_lines(block[line_end + 1:line_end + 1 + CONTEXT_BYTES])[:AFTER]
        lines.extend(clean_line(raw) for raw in after)
        self.scan.candidate_windows[number] = (number - len(before), lines)
        if len(after) < AFTER and line_end + 1 + CONTEXT_BYTES >= len(block):
            self._pending.append((number, AFTER - len(after), lines))

    def _fill_pending(self, block: bytearray) -> None:
        still: list[tuple[int, int, list[str]]] = []
        head = split_lines(block[:CONTEXT_BYTES])
        for line, wanted, lines in self._pending:
            lines.extend(clean_line(raw) for raw in head[:wanted])
            if len(head) < wanted:
                still.append((line, wanted - len(head), lines))
        self._pending = still


def _pooled_buffer() -> bytearray:
    try:
        return _POOL.pop()
    except IndexError:  # empty, or another thread took the last one
        return bytearray()


def _captures(match: re.Match[str]) -> dict[str, str]:
    # Alternatives name the same thing path, path2, ...: report it under the base name.
    out: dict[str, str] = {}
    for name, value in match.groupdict().items():
        if value:
            out.setdefault(name.rstrip("0123456789") or name, value[:300])
    return out


def _strongest_windows(scan: LogScan, limit: int = 3) -> list[tuple[int, list[str]]]:
    ranked = sorted(scan.signals, key=lambda s: (-s.priority, s.offset))
    chosen: list[tuple[int, list[str]]] = []
    for signal in ranked:
        window = scan.window_for(signal.evidence.line)
        if window is not None and window not in chosen:
            chosen.append(window)
        if len(chosen) >= limit:
            break
    return sorted(chosen)
