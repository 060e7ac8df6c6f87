"""What one request may cost the service: its body (413), its batch (422), its time (504).

The limits come from the environment, so an operator sets them per deployment:
``MAX_BODY_BYTES``, ``PREDICT_MAX_BATCH``, ``PREDICT_TIMEOUT_SECONDS`` and
``PREDICT_CONCURRENCY`` (predictions run at once in one worker process; the default, 1, suits
models that hold Python's GIL, as scikit-learn's mostly do: more threads only take turns, and
the slowest request waits longest. Add worker processes instead, ``WEB_CONCURRENCY``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

T = TypeVar("T")
N = TypeVar("N", int, float)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_batch: int
    timeout_seconds: float
    concurrency: int

    @classmethod
    def from_environment(cls) -> Limits:
        return cls(
            max_body_bytes=setting("MAX_BODY_BYTES", 16 * 1024 * 1024),
            max_batch=setting("PREDICT_MAX_BATCH", 10000),
            timeout_seconds=setting("PREDICT_TIMEOUT_SECONDS", 10.0),
            concurrency=setting("PREDICT_CONCURRENCY", 1),
        )


def setting(name: str, default: N) -> N:
    """The environment variable `name` read as the type of `default`; a bad value names itself."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = type(default)(raw)
    except ValueError:
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ValueError(f"{name}={raw!r} is not {kind}") from None
    if value < 0:
        raise ValueError(f"{name}={raw!r} must not be negative")
    return value


class PredictionThreads:
    """Where predictions run: ``concurrency`` worker threads, each request under the time limit.

    Requests queue for a thread, and the time limit counts from the request, so queueing
    counts too. A thread cannot be stopped: on a timeout the client gets its 504 at once; if
    its prediction was already running, it runs to its end in the background (its result
    dropped) while new predictions go to fresh threads, so one runaway does not hold up the
    rest.

    A limit of 0 seconds means none: predictions then run on the event loop itself, which
    saves handing each to a thread and back, and the two threads taking turns at Python's lock
    meanwhile, but lets one slow request hold up every other request of the worker,
    ``/health`` included.
    """

    def __init__(self, limits: Limits) -> None:
        self.seconds = limits.timeout_seconds
        self.concurrency = limits.concurrency
        self.pool = self.new_pool()

    def new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.concurrency, thread_name_prefix="predict")

    async def run(self, work: Callable[[], T]) -> T:
        if self.seconds <= 0:
            return work()
        pool = self.pool
        future = pool.submit(work)
        try:
            async with asyncio.timeout(self.seconds):
                return await asyncio.wrap_future(future)
        except TimeoutError:
            if future.running() and self.pool is pool:  # a runaway keeps its thread
                self.pool = self.new_pool()
                pool.shutdown(wait=False)  # its threads end once their work is done
            raise


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
