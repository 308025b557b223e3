"""ASGI middleware: storable query strings and paths, request body limit, a deadline for
the answer, Prometheus request metrics."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_to_bytes

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.text import problem
from infrastructure.logs import REQUEST_ID as REQUEST_ID_VAR

REQUESTS = Counter("apranova_http_requests_total", "HTTP requests",
                   ["method", "route", "status"])
LATENCY = Histogram("apranova_http_request_duration_seconds", "HTTP request latency",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10))


log = logging.getLogger("apranova.http")


async def send_error(send: Send, status: int, code: str, message: str,
                      headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps({"status": "error",
                       "error": {"code": code, "message": message, "details": {}}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})


def _unstorable(raw: bytes) -> str | None:
    """Why a percent-encoded query string or path cannot be taken in, or None: it must
    decode as UTF-8 (which has no surrogates) and hold no NUL."""
    try:
        text = unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        return "Not valid UTF-8 once percent-decoded"
    return problem(text)


class TextGuard:
    """Refuse with 400 a query string or path holding text that cannot be stored.

    The framework decodes them leniently (invalid UTF-8 becomes U+FFFD, NUL stays), and a
    NUL reaching a database query fails it; one check here covers every parameter."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for part, raw in (("query string", scope.get("query_string", b"")),
                              ("path", scope.get("raw_path")
                               or scope["path"].encode("utf-8", "surrogatepass"))):
                if raw and (reason := _unstorable(raw)):
                    await send_error(send, 400, "BAD_REQUEST", f"The {part}: {reason}")
                    return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse bodies over the limit with 413, whether or not Content-Length is sent.

    Paths ending in `upload_suffix` (file uploads) get `upload_bytes` plus room for the
    multipart framing; everything else `max_bytes`.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int,
                 upload_suffix: str = "/file/") -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.upload_bytes = upload_bytes + 64 * 1024
        self.upload_suffix = upload_suffix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (self.upload_bytes if scope["path"].endswith(self.upload_suffix)
                 else self.default_bytes)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await send_error(send, 400, "BAD_REQUEST", "Invalid Content-Length")
                return
            if too_big:
                await send_error(send, 413, "PAYLOAD_TOO_LARGE",
                                  f"Request body exceeds {limit} bytes")
                return
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read up to the limit, then replay what was read.
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await send_error(send, 413, "PAYLOAD_TOO_LARGE",
                                  f"Request body exceeds {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


@dataclass
class _Due:
    at: float


_DUE: contextvars.ContextVar[_Due | None] = contextvars.ContextVar("deadline", default=None)


def extend_deadline(seconds: float) -> None:
    """Give this request `seconds` more: a stored command waiting on the event loop for
    its read model (consistency.Settling) answers 202 by itself when that runs out."""
    due = _DUE.get()
    if due is not None:
        due.at = max(due.at, time.monotonic() + seconds)


class Deadline:
    """Answer 503 with Retry-After when the app has not begun its answer within `seconds`
    of the request (or of its last body chunk, so slow uploads are not cut off).

    A database that hangs (paused, or a network that drops packets) holds a query for as
    long as it hangs, and every request queued behind it waited just as long (14 s for a
    10 s outage). The request's work goes on in the background and its late answer is
    dropped; a command that committed meanwhile is safe to retry with its Idempotency-Key.
    """

    def __init__(self, app: ASGIApp, seconds: float, retry_after: int = 2) -> None:
        self.app = app
        self.seconds = seconds
        self.retry_after = str(retry_after).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        due = _Due(time.monotonic() + self.seconds)
        began = late = False

        async def timed_receive() -> Message:
            message = await receive()
            due.at = max(due.at, time.monotonic() + self.seconds)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal began
            if late:
                return
            began = began or message["type"] == "http.response.start"
            await send(message)

        token = _DUE.set(due)
        try:
            task = asyncio.ensure_future(self.app(scope, timed_receive, guarded_send))
        finally:
            _DUE.reset(token)
        while not task.done():
            remaining = due.at - time.monotonic()
            if began or remaining > 0:
                await asyncio.wait({task}, timeout=None if began else remaining)
                continue
            late = True
            task.add_done_callback(_log_late_failure)
            await send_error(send, 503, "SERVICE_UNAVAILABLE",
                              f"No answer within {self.seconds:g} s; a backing service is "
                              "slow or unavailable", ((b"retry-after", self.retry_after),))
            return
        task.result()


def _log_late_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.warning("a request answered late with 503 then failed: %r", error)


ACCESS = logging.getLogger("apranova.access")
# A client's own X-Request-ID is kept if it is this tame; otherwise one is made.
REQUEST_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class Metrics:
    """Every request's id, its Prometheus metrics and its access log line, in one layer.

    The id is the client's `X-Request-ID`, or a new one. It is in the response, in every
    log line the request causes (infrastructure.logs.REQUEST_ID) and in the
    process-manager messages for the events it stored. This layer sits outside Deadline,
    whose task inherits the id."""

    def __init__(self, app: ASGIApp, access_log: bool = True) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        given = next((v for k, v in scope.get("headers") or () if k == b"x-request-id"), b"")
        request_id = given.decode() if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        token = REQUEST_ID_VAR.set(request_id)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            # Label by route template, not raw path, so ids don't explode the series count.
            name = getattr(route, "path_format", None) or getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            took = time.perf_counter() - started
            REQUESTS.labels(method, name, str(status)).inc()
            LATENCY.labels(method, name).observe(took)
            if self.access_log:
                ACCESS.info("%s %s %s", method, name, status, extra={
                    "method": method, "route": name, "status": status,
                    "duration_ms": round(took * 1000, 2),
                    "principal": (scope.get("state") or {}).get("principal_id")})
            REQUEST_ID_VAR.reset(token)
