"""Literals every match of a regex contains: the `re` engine's prefilter, the bench's baseline."""

from __future__ import annotations

import re
from typing import Any

_PARSER: Any = getattr(re, "_parser")  # noqa: B009  (private, but the only parser of `re` syntax)
_LITERAL: Any = getattr(re, "_constants").LITERAL  # noqa: B009
_BRANCH: Any = getattr(re, "_constants").BRANCH  # noqa: B009
_SUBPATTERN: Any = getattr(re, "_constants").SUBPATTERN  # noqa: B009


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
