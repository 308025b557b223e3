"""ASGI middleware: storable query strings and paths, request body limit, Prometheus
request metrics."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote_to_bytes

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.text import problem

REQUESTS = Counter("apranova_http_requests_total", "HTTP requests",
                   ["method", "route", "status"])
LATENCY = Histogram("apranova_http_request_duration_seconds", "HTTP request latency",
                    ["method", "route"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10))


async def _send_error(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"status": "error",
                       "error": {"code": code, "message": message, "details": {}}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
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
                    await _send_error(send, 400, "BAD_REQUEST", f"The {part}: {reason}")
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
                await _send_error(send, 400, "BAD_REQUEST", "Invalid Content-Length")
                return
            if too_big:
                await _send_error(send, 413, "PAYLOAD_TOO_LARGE",
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
                await _send_error(send, 413, "PAYLOAD_TOO_LARGE",
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


class Metrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route: Any = scope.get("route")
            # Label by route template, not raw path, so ids don't explode the series count.
            name = getattr(route, "path_format", None) or getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            REQUESTS.labels(method, name, str(status)).inc()
            LATENCY.labels(method, name).observe(time.perf_counter() - started)
