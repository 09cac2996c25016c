"""Fingerprints: a log line reduced to a template so the same failure in another run matches."""

from __future__ import annotations

import hashlib
import re

# Order matters: the most specific shapes go first so later, broader ones don't split them.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), repl)
    for pattern, repl in (
        (r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?", "<ts>"),
        (r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<ts>"),
        (r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b", "<uuid>"),
        (r"\bsha\d+:[0-9a-fA-F]{16,}", "<digest>"),
        (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "<ip>"),
        (r"\[[0-9a-fA-F:]*:[0-9a-fA-F:]+\](?::\d+)?", "<ip>"),
        (r"(?:[A-Za-z]:)?(?:\.{0,2}/|~/)?(?:[\w@.+-]+/)+[\w@.+-]*", "<path>"),
        (r"\b0x[0-9a-fA-F]+\b", "<hex>"),
        (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,}\b", "<hash>"),
        (r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|secs|seconds|m|min|minutes|h|µs|us|ns)\b", "<dur>"),
        (r"\b\d+(?:\.\d+)*\b", "<n>"),
    )
)
_SPACE = re.compile(r"\s+")


def fingerprint_line(text: str) -> str:
    """The template of a line: timestamps, uuids, digests, IPs, paths, hex, hashes,
    durations and numbers masked, whitespace collapsed."""
    out = text
    for pattern, repl in _MASKS:
        out = pattern.sub(repl, out)
    return _SPACE.sub(" ", out).strip()


def fingerprint(category: str, rule_id: str, template: str) -> str:
    """A short stable hex id of a failure kind (category, rule and line template)."""
    digest = hashlib.sha256(f"{category}\x1f{rule_id}\x1f{template}".encode()).hexdigest()
    return digest[:16]
