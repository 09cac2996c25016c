"""HTTP client for an OpenAI-compatible chat-completions endpoint: timeouts, retries, size caps."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from pipeline_recovery.llm.errors import (
    LLMInvalidAnswer,
    LLMRateLimited,
    LLMRequestRejected,
    LLMServerError,
    LLMTimeout,
)

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 1024 * 1024  # a chat completion of a few hundred tokens is a few KB
RETRY_AFTER_CAP_SECONDS = 60.0  # a server asking for longer than this gets LLMRateLimited now
BACKOFF_CAP_SECONDS = 30.0


@dataclass(frozen=True)
class ChatResult:
    """The assistant message text and the usage the server reported."""

    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int


class LLMClient:
    """POST {base_url}/chat/completions with JSON mode; one instance per process."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr | str,
        model: str,
        timeout_seconds: float = 30.0,
        max_retries: int = 3,
        backoff_seconds: float = 1.0,
        temperature: float = 0.1,
        max_tokens: int = 800,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        self.model = model
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._max_retries = max_retries
        self._backoff = backoff_seconds
        self._temperature = temperature
        self._max_tokens = max_tokens
        self._timeout = timeout_seconds
        # The key lives only in this header; httpx never puts headers in exception text.
        self._http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def complete(self, messages: Sequence[Mapping[str, str]]) -> ChatResult:
        """One chat completion; retries 429/5xx/transport errors with jittered backoff."""
        body = {
            "model": self.model,
            "messages": [dict(message) for message in messages],
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
            "response_format": {"type": "json_object"},
        }
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._once(body, attempt)
            except (LLMRateLimited, LLMServerError) as exc:
                delay = self._delay(attempt, exc.retry_after)
                if attempt > self._max_retries or delay is None:
                    raise
                log.info("LLM request failed (%s); retry %d in %.2fs", exc, attempt, delay)
                await asyncio.sleep(delay)

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        if retry_after is not None:
            return retry_after if retry_after <= RETRY_AFTER_CAP_SECONDS else None
        ceiling = min(BACKOFF_CAP_SECONDS, self._backoff * 2 ** (attempt - 1))
        # Full jitter: many operators retrying together must not hit the endpoint in step.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not crypto

    async def _once(self, body: Mapping[str, Any], attempt: int) -> ChatResult:
        # One deadline for the whole exchange (headers and body): a server that trickles bytes
        # must not hold us past the timeout either.
        try:
            async with asyncio.timeout(self._timeout):
                async with self._http.stream("POST", self._url, json=body) as response:
                    raw = await _read_capped(response)
        except (TimeoutError, httpx.TimeoutException):
            raise LLMTimeout(f"no answer within {self._timeout:g}s") from None
        except httpx.TransportError as exc:
            raise LLMServerError(f"transport error: {type(exc).__name__}") from None
        status = response.status_code
        if status == 429:
            raise LLMRateLimited(
                "rate limited by the LLM endpoint (HTTP 429)",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if status >= 500:
            raise LLMServerError(
                f"LLM endpoint error (HTTP {status})",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if status != 200:
            raise LLMRequestRejected(f"LLM endpoint refused the request (HTTP {status})")
        return _parse_completion(raw, self.model, attempt)


async def _read_capped(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise LLMInvalidAnswer(f"response larger than {MAX_RESPONSE_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); None when absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _parse_completion(raw: bytes, model: str, attempts: int) -> ChatResult:
    try:
        doc = json.loads(raw)
        message = doc["choices"][0]["message"]
        content = message["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMInvalidAnswer("response is not a chat completion") from None
    if not isinstance(content, str):
        raise LLMInvalidAnswer("chat completion has no text content")
    usage = doc.get("usage") if isinstance(doc, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    return ChatResult(
        content=content,
        model=model,
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        attempts=attempts,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
