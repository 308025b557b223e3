"""A small HTTP/1.1 keep-alive client on asyncio streams, for load generation.

The load generator shares two cores with the server and PostgreSQL. httpx spent about
2.7 ms of CPU per request here (measured: bench/load.py's SELECT phase), more than the
server it was measuring; this client does only what the benchmarks need (JSON bodies,
Content-Length or chunked responses, pooled keep-alive connections) at a fraction of that.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

# Idle connections are dropped before uvicorn's 5 s keep-alive closes them, so a request
# is never sent on a connection the server is closing.
KEEPALIVE_EXPIRY = 2.5


class HTTPError(Exception):
    """The request got no complete response (connection, protocol or timeout)."""


class Headers(dict[str, str]):
    """Response headers, looked up without regard to case."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class Response:
    method: str
    path: str
    status_code: int
    headers: Headers
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: float = field(default_factory=time.monotonic)


class Client:
    def __init__(self, base_url: str, max_connections: int = 100,
                 timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.host_header = f"{self.host}:{self.port}".encode()
        self.timeout = timeout
        self.idle: deque[_Connection] = deque()
        self.slots = asyncio.Semaphore(max_connections)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        while self.idle:
            self.idle.popleft().writer.close()

    async def get(self, url: str, **kw: Any) -> Response:
        return await self.request("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> Response:
        return await self.request("POST", url, **kw)

    async def put(self, url: str, **kw: Any) -> Response:
        return await self.request("PUT", url, **kw)

    async def request(self, method: str, url: str, headers: dict[str, str] | None = None,
                      json: Any = None, content: bytes | None = None) -> Response:
        body = content if content is not None else (
            jsonlib.dumps(json).encode() if json is not None else b"")
        head = [f"{method} {url} HTTP/1.1".encode(), b"Host: " + self.host_header]
        if json is not None:
            head.append(b"Content-Type: application/json")
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: " + str(len(body)).encode())
        head += [f"{k}: {v}".encode() for k, v in (headers or {}).items()]
        message = b"\r\n".join(head) + b"\r\n\r\n" + body
        async with self.slots:
            connection = await self._checkout()
            try:
                async with asyncio.timeout(self.timeout):
                    connection.writer.write(message)
                    status, response_headers, payload = await _read_response(
                        connection.reader, method)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, ValueError) as exc:
                connection.writer.close()
                raise HTTPError(f"{type(exc).__name__}: {exc}") from exc
            if response_headers.get("connection", "").lower() == "close":
                connection.writer.close()
            else:
                connection.used = time.monotonic()
                self.idle.append(connection)
        return Response(method, url.split("?", 1)[0], status, response_headers, payload)

    async def open(self) -> _Connection:
        """A new connection, not yet in the pool (see `keep`)."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout)
        except (OSError, TimeoutError) as exc:
            raise HTTPError(f"{type(exc).__name__}: {exc}") from exc
        return _Connection(reader, writer)

    def keep(self, connection: _Connection) -> None:
        """Put an opened connection in the pool, for the next requests to use."""
        self.idle.append(connection)

    async def _checkout(self) -> _Connection:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()  # the most recently used: least likely expired
            if now - connection.used < KEEPALIVE_EXPIRY:
                return connection
            connection.writer.close()
        return await self.open()


async def _read_response(reader: asyncio.StreamReader, method: str
                         ) -> tuple[int, Headers, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = Headers()
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, headers, b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))
