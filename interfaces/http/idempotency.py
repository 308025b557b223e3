"""Idempotency-Key on commands, as Stripe has it: a retry with the same key and body
within a day answers the first outcome (status, headers and body) instead of running
again; the same key with another body is a 422.

After a 503 (a database outage, say) a client cannot know whether its command was
stored: most were. With a key it retries safely. The key belongs to the account whose
verified token sent it, so one account can never see another's outcome; a request
without a valid token is passed on untouched (and answered 401 where that is needed).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable
from typing import Any

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import DomainError
from infrastructure.authstore import RememberedSessions
from infrastructure.idempotency import IdempotencyRecords
from infrastructure.jwt_tokens import JwtTokens
from interfaces.http.middleware import send_error

log = logging.getLogger("apranova.http")

HEADER = b"idempotency-key"
KEY = re.compile(r"[\x21-\x7e]{1,255}")
COMMANDS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Bigger answers are not kept (commands answer with a small JSON object).
MAX_KEPT_BODY = 1 << 20


class Idempotency:
    def __init__(self, app: ASGIApp, records: IdempotencyRecords,
                 subject: Callable[[bytes], str | None], router: Router) -> None:
        self.app = app
        self.records = records
        self.subject = subject
        self.router = router

    def _routed(self, scope: Scope) -> bool:
        """Whether a route takes this method and path (else the app's 404 or 405)."""
        return any(route.matches(scope)[0] is Match.FULL for route in self.router.routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in COMMANDS:
            await self.app(scope, receive, send)  # reads: no header lookup at all
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(HEADER)
        if raw is None or not self._routed(scope):
            await self.app(scope, receive, send)
            return
        key = raw.decode("latin-1")
        if not KEY.fullmatch(key):
            await send_error(send, 400, "BAD_REQUEST",
                             "Idempotency-Key: 1 to 255 visible ASCII characters")
            return
        # The body first, before anything that may wait: once a late request has been
        # answered 503 (Deadline), the server has nothing more to give.
        body, rest = await _read_body(receive)
        subject = await _blocking(self.subject, headers.get(b"authorization", b""))
        if subject is None:
            await self.app(scope, _replaying(body, rest), send)
            return
        fingerprint = request_fingerprint(scope["method"], scope["path"],
                                          scope.get("query_string", b""), body)
        held = await _blocking(self.records.reserve, subject, key, fingerprint)
        if held is not None:
            if held.fingerprint != fingerprint:
                await send_error(send, 422, "IDEMPOTENCY_KEY_REUSED",
                                 "This Idempotency-Key was used for another request")
            elif held.status is None:
                await send_error(send, 409, "IDEMPOTENCY_IN_PROGRESS",
                                 "A request with this Idempotency-Key is still running",
                                 ((b"retry-after", b"1"),))
            else:
                await send({"type": "http.response.start", "status": held.status,
                            "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                        for k, v in held.headers]
                            + [(b"idempotent-replayed", b"true")]})
                await send({"type": "http.response.body", "body": held.body})
            return
        await self._first(scope, body, rest, send, subject, key)

    async def _first(self, scope: Scope, body: bytes, rest: Receive, send: Send,
                     subject: str, key: str) -> None:
        status: int | None = None
        kept: list[tuple[str, str]] = []
        held: list[Message] = []

        async def hold(message: Message) -> None:
            # Held until the outcome is kept: a retry sent the moment the client has the
            # answer must find it, not "in progress".
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                kept.extend((k.decode("latin-1"), v.decode("latin-1"))
                            for k, v in message.get("headers", []))
            held.append(message)

        try:
            await self.app(scope, _replaying(body, rest), hold)
        except BaseException:
            await _quietly(self.records.release, subject, key)
            raise
        answer = b"".join(m.get("body", b"") for m in held
                          if m["type"] == "http.response.body")
        if status is None or status >= 500 or len(answer) > MAX_KEPT_BODY:
            # Nothing worth repeating (a 5xx is retried for real next time).
            await _quietly(self.records.release, subject, key)
        else:
            position = dict(kept).get("x-position")
            await _quietly(self.records.complete, subject, key, status, kept, answer,
                           int(position) if position and position.isdigit() else None)
        for message in held:
            await send(message)


def request_fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """What makes two requests the same one."""
    return hashlib.sha256(b"\0".join((
        method.encode(), path.encode("utf-8", "surrogatepass"), query, body))).hexdigest()


def _replaying(body: bytes, rest: Receive) -> Receive:
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await rest()

    return receive


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body (its size is bounded by BodyLimit, outside this)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks), receive


async def _blocking(call: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, call, *args)


async def _quietly(call: Callable[..., Any], *args: Any) -> None:
    """Keep or forget an outcome; if the database fails now, the answer still goes out
    (a key left "in progress" answers 409 until it is stale, not a second run)."""
    try:
        await _blocking(call, *args)
    except Exception:
        log.exception("could not record the Idempotency-Key outcome")


def bearer_subject(tokens: JwtTokens, sessions: RememberedSessions
                   ) -> Callable[[bytes], str | None]:
    """The account of a valid bearer token on a live session, or None."""

    def subject(authorization: bytes) -> str | None:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            claims = tokens.decode_access(token.strip())
        except DomainError:
            return None
        if not sessions.is_active(claims.session_id, claims.account_id):
            return None
        return str(claims.account_id)

    return subject
