# {{ cookiecutter._code.header }}
"""What one request may cost the service: its body (413), its batch (422), its time (504).

The limits come from the environment, so an operator sets them per deployment:
``MAX_BODY_BYTES``, ``PREDICT_MAX_BATCH``, ``PREDICT_TIMEOUT_SECONDS`` and
``PREDICT_CONCURRENCY`` (predictions run at once in one worker process; the default, 1, suits
models that hold Python's GIL, as scikit-learn's mostly do: more threads only take turns, and
the slowest request waits longest. Add worker processes instead, ``WEB_CONCURRENCY``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_batch: int
    timeout_seconds: float
    concurrency: int

    @classmethod
    def from_environment(cls) -> Limits:
        return cls(
            max_body_bytes=int(os.environ.get("MAX_BODY_BYTES", str(16 * 1024 * 1024))),
            max_batch=int(os.environ.get("PREDICT_MAX_BATCH", "10000")),
            timeout_seconds=float(os.environ.get("PREDICT_TIMEOUT_SECONDS", "10")),
            concurrency=int(os.environ.get("PREDICT_CONCURRENCY", "1")),
        )


async def within(seconds: float, work: Callable[[], T], threads: anyio.CapacityLimiter) -> T:
    """Run blocking work in a worker thread; stop waiting for it after ``seconds``.

    The time counts from the call, so waiting for a free thread counts too. A thread cannot be
    killed: on a timeout the client gets its 504 at once and the thread's place is freed, while
    the work runs to its end in the background and its result is dropped.
    """
    with anyio.fail_after(seconds):
        return await anyio.to_thread.run_sync(work, abandon_on_cancel=True, limiter=threads)


class BodyTooLarge(Exception):
    """Raised while the body streams in, once it passes the limit."""


class LimitBodySize:
    """ASGI middleware: 413 for a body over the limit, by its Content-Length or as it streams.

    A declared length is refused before a byte is read; a chunked body is counted as it
    arrives and refused as soon as it passes the limit, so no body is ever held whole.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(send)
            return
        received = 0
        started = False

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_tracked)
        except BodyTooLarge:
            if started:
                raise
            await self.refuse(send)

    async def refuse(self, send: Send) -> None:
        detail = f"request body over {self.max_bytes} bytes (MAX_BODY_BYTES)"
        body = orjson.dumps({"detail": detail})
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
