"""Optional C accelerators (`_native_scan`, built where libhs is installed) with fallbacks."""

from __future__ import annotations

import re
from typing import Any

from pipeline_recovery.cleaning import CSI_PATTERN

_CSI = re.compile(CSI_PATTERN)

_native: Any
try:
    from pipeline_recovery import _native_scan as _native
except ImportError:  # no compiler or no libhs headers at install time: pure-Python paths
    _native = None

NATIVE: Any = _native  # the extension module, or None


def strip_into(out: bytearray, head: bytes, body: bytes, start: int, end: int) -> int:
    """out = head + body[start:end] without CSI sequences (colours, cursor moves), which
    would otherwise hide a phrase from the scan forms; returns the newlines copied, counted
    in the same pass. The stream reuses one buffer for every block: fresh megabyte-sized
    objects cost more in page faults than the scan."""
    if _native is not None:
        lines: int = _native.strip_into(out, head, body, start, end)
        return lines
    data = head + body[start:end]
    out[:] = _CSI.sub(b"", data) if b"\x1b" in data else data
    return out.count(b"\n")


def count_lines(block: bytes | bytearray, start: int, end: int) -> int:
    """Newlines in block[start:end]."""
    if _native is not None:
        count: int = _native.count_lines(block, start, end)
        return count
    return block.count(b"\n", start, end)
