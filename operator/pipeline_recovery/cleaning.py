"""Input hygiene for candidate lines: decode, strip ANSI and progress bars, drop NULs, truncate."""

from __future__ import annotations

import re

MAX_LINE_CHARS = 1000  # what a kept line may show; matching sees up to MAX_LINE_BYTES
MAX_LINE_BYTES = 64 * 1024

# CSI sequences only (colours, cursor moves): what the scan strips from whole blocks.
CSI_PATTERN = rb"\x1b\[[0-9;?<=>]*[ -/]*[@-~]"
# CSI, OSC (titles, hyperlinks) and lone two-byte escapes.
_ANSI = re.compile(CSI_PATTERN.decode() + r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# The timestamp a runner puts before every line: GitHub Actions and `kubectl logs
# --timestamps` (RFC 3339), GitLab's raw trace (plus its stream mark, "00O"), Jenkins'
# timestamper in brackets. Rules anchored at the line start (`^FAIL`) see the tool's line.
_TIMESTAMP = re.compile(
    r"^\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]?"
    r"(?: \d\d[OE]\+? ?| )"
    # Jenkins' timestamper in its time-only format ("22:52:57 ", "[00:06:41.396] ").
    r"|^\[?\d\d:\d\d:\d\d(?:[.,]\d+)?\]? +")
_WARNING = re.compile(
    r"^\s*(?:\S+\s+){0,2}?(?:npm WARN|pnpm WARN|yarn warn|warning |WARN(?:ING)?\b|"
    r"\[(?:WARN(?:ING)?|[Ww]arn(?:ing)?)\]|[Ww]arning(?:\[\w+\])?:|W\d{4} |::warning|##\[warning\]|"
    # logrus lines below error level (kaniko's "INFO[0000] Error while retrieving image from
    # cache: ... no such file or directory" is a cache miss, not the failure). Not logfmt's
    # level=info: controllers (Argo's "Pod failed: StartError ...") report failures at it.
    r"(?:INFO|DEBU)\[\d+\]|level=(?:debug|warn(?:ing)?)\b)"
)


def clean_line(raw: bytes | bytearray | str, limit: int = MAX_LINE_CHARS) -> str:
    """The line as a terminal would show it: decoded, no colour codes, last progress frame."""
    text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
    if len(text) > MAX_LINE_BYTES:
        text = text[:MAX_LINE_BYTES]
    if "\x1b" in text:
        text = _ANSI.sub("", text)
    text = text.rstrip("\r\n")
    if "\r" in text:
        # A progress bar redraws with CR; the last non-empty frame is what stays on screen.
        frames = [frame for frame in text.split("\r") if frame.strip()]
        text = frames[-1] if frames else ""
    if "\x00" in text or _CONTROL.search(text):
        text = _CONTROL.sub("", text)
    if text[:1].isdigit() or text[:1] == "[":
        text = _TIMESTAMP.sub("", text, count=1)
    text = text.replace("\t", "    ").rstrip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text

# The same marks on a raw line, only where cleaning cannot change the verdict: printable ASCII
# up to the mark, and a mark that is complete whatever follows (so a match here implies
# is_warning_line(clean_line(raw)) as long as the line has no carriage return). No
# lookaround: the native engine compiles the same pattern for Hyperscan (anchored with ^).
RAW_WARNING_PATTERN = (
    rb"[ \t]*(?:[!-~]+[ \t]+){0,2}(?:npm WARN|pnpm WARN|yarn warn|::warning|##\[warning\]|"
    rb"\[(?:WARN(?:ING)?|[Ww]arn(?:ing)?)\]|[Ww]arning:|(?:warning|W\d{4}) +[!-~]|"
    rb"WARN(?:ING)?(?:$|[ \t!-/:-@\[-^`{-~]))"
)
_RAW_WARNING = re.compile(RAW_WARNING_PATTERN)


def is_raw_warning(block: bytes | bytearray, start: int, end: int) -> bool:
    """Whether block[start:end] (one raw line) is surely a warning line once cleaned."""
    return _RAW_WARNING.match(block, start, end) is not None and block.find(b"\r", start, end) < 0


def is_warning_line(text: str) -> bool:
    """A line the tool itself marks as a warning (or as info): weak evidence of a root cause."""
    return _WARNING.match(text) is not None


def split_lines(data: bytes | bytearray) -> list[bytes] | list[bytearray]:
    """Raw lines of a byte buffer (no trailing empty line)."""
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    return lines
