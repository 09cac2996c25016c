"""A real OpenAI-compatible chat-completions server on loopback, scripted per test (aiohttp).

It runs on its own thread and event loop, so sync code (bench, CLI) and async tests can use it
alike. Each request pops the next scripted Reply (or uses the default) and is recorded.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

GOOD_ANSWER: dict[str, Any] = {
    "root_cause": "The frobnicator step crashed on a corrupt cache entry.",
    "solution": "Clear the build cache and re-run the step.",
    "similar_cases": ["frobnicator crash after cache restore"],
    "estimated_minutes": 10,
    "category": "missing-file",
    "confidence": 0.8,
    "suggested_action": "clear-cache",
}


@dataclass
class Reply:
    """One scripted response."""

    status: int = 200
    content: str | None = None  # the assistant message text (200 only)
    body: bytes | None = None  # raw body instead of a chat completion
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering; a hang is a long delay
    usage: tuple[int, int] | None = (120, 40)

    @classmethod
    def answer(cls, doc: Mapping[str, Any] | None = None, **kw: Any) -> Reply:
        return cls(content=json.dumps(dict(doc if doc is not None else GOOD_ANSWER)), **kw)

    @classmethod
    def text(cls, content: str, **kw: Any) -> Reply:
        return cls(content=content, **kw)

    @classmethod
    def error(cls, status: int, retry_after: str | None = None, **kw: Any) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=status, body=b'{"error": {"message": "scripted"}}', headers=headers, **kw)

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        return cls.answer(delay=seconds)


@dataclass
class Seen:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    raw: str
    body: Any


class FakeLLMServer:
    """POST /v1/chat/completions on 127.0.0.1:<ephemeral>; `base_url` ends in /v1."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply.answer()
        self.script: deque[Reply] = deque()
        self.requests: list[Seen] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stopping: asyncio.Event | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    def bodies(self) -> list[str]:
        return [seen.raw for seen in self.requests]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.text()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.requests.append(Seen(request.path, dict(request.headers), raw, body))
        reply = self.script.popleft() if self.script else self.default
        if reply.delay:
            assert self._stopping is not None
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), reply.delay)
        if reply.body is not None or reply.status != 200:
            return web.Response(
                status=reply.status,
                body=reply.body or b"{}",
                headers=dict(reply.headers),
                content_type="application/json",
            )
        doc: dict[str, Any] = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "model": (body or {}).get("model", "unknown"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
        }
        if reply.usage is not None:
            doc["usage"] = {
                "prompt_tokens": reply.usage[0],
                "completion_tokens": reply.usage[1],
                "total_tokens": sum(reply.usage),
            }
        return web.json_response(doc, headers=dict(reply.headers))

    async def _start(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def _stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> FakeLLMServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@contextmanager
def running_server(default: Reply | None = None) -> Iterator[FakeLLMServer]:
    server = FakeLLMServer(default).start()
    try:
        yield server
    finally:
        server.stop()


try:  # a fixture for the test modules that import it; the bench uses running_server()
    import pytest

    @pytest.fixture
    def llm_server() -> Iterator[FakeLLMServer]:
        with running_server() as server:
            yield server
except ImportError:  # pragma: no cover - pytest is a dev dependency only
    pass


@functools.cache
def shared_classifier() -> Any:
    """One loaded Classifier for every LLM test module (loading compiles the pattern table)."""
    from pipeline_recovery.classifier import Classifier

    return Classifier.load()
