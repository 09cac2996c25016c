"""The classifier's public API: load the pattern table, scan logs in chunks, diagnose."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline_recovery.model import Diagnosis
from pipeline_recovery.patterns import PatternError, Rule, load_rules
from pipeline_recovery.scan_engines import ENGINES, Engine, build_engine
from pipeline_recovery.scanning import LogScan, LogStream
from pipeline_recovery.status_evidence import event_signals, status_signals
from pipeline_recovery.verdict import decide

__all__ = ["ENGINES", "Classifier", "LogScan", "LogStream", "PatternError"]

CHUNK = 1 << 20


class Classifier:
    """A compiled pattern table and scan engine; thread-safe, load once and share."""

    def __init__(self, rules: Sequence[Rule], engine: Engine) -> None:
        self.rules = tuple(rules)
        self.by_id: dict[str, Rule] = {rule.id: rule for rule in self.rules}
        self.engine = engine

    @classmethod
    def load(cls, extra_files: Iterable[str | Path] = (), engine: str = "auto", *,
             builtin: bool = True) -> Classifier:
        """Built-in table plus extra files (PatternError on a bad one); engine is
        auto|native|hyperscan|re2|re (ImportError if the named one is not installed)."""
        rules = load_rules(extra_files, builtin=builtin)
        return cls(rules, build_engine(rules, engine))

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def open_stream(self, source: str = "log", container: str | None = None,
                    tail_lines: int = 50) -> LogStream:
        """An incremental scan: feed(bytes) in any chunking, then finish() -> LogScan."""
        return LogStream(self.rules, self.engine, source=source, container=container,
                         tail_lines=tail_lines)

    def scan_bytes(self, data: bytes, source: str = "log",
                   container: str | None = None) -> LogScan:
        stream = self.open_stream(source=source, container=container)
        view = memoryview(data)
        for start in range(0, len(data), CHUNK):
            stream.feed(bytes(view[start:start + CHUNK]))
        return stream.finish()

    def scan_file(self, path: str | Path, source: str = "log",
                  container: str | None = None) -> LogScan:
        """Stream a file in chunks (OSError propagates for the caller to report)."""
        stream = self.open_stream(source=source, container=container)
        with open(path, "rb") as handle:
            while chunk := handle.read(CHUNK):
                stream.feed(chunk)
        return stream.finish()

    def diagnose(self, scans: Sequence[LogScan], status: Mapping[str, Any] | None = None,
                 events: Sequence[Mapping[str, Any]] = ()) -> Diagnosis:
        """Weigh the log scans with the Pod/Job status and its events into one verdict."""
        signals = [s for scan in scans for s in scan.signals]
        signals.extend(status_signals(status))
        signals.extend(event_signals(events))
        fallback = next((line for scan in scans for line in reversed(scan.tail) if line), "")
        return decide(signals, self.by_id, fallback)

    @classmethod
    def load_default(cls) -> Classifier:
        """The classifier the settings describe (extra pattern files, scan engine)."""
        from pipeline_recovery.settings import load_settings

        settings = load_settings()
        return cls.load(settings.extra_pattern_files, settings.scan_engine)
