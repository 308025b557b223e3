"""The routers' base: blocking endpoints run in the thread pool in one hop, not two.

FastAPI runs a plain `def` endpoint in the thread pool and then, when it has a response
model, validates the result in a second trip to the pool. A trip costs more CPU than
most reads here (measured: about 250 us each, against 120 us for a whole async request
without dependencies), so every blocking endpoint is wrapped in a coroutine that makes
the one trip itself; FastAPI then treats it as async and validates in the event loop.

The trip goes through the event loop's own executor (`asyncio.to_thread`; the app sets
its size), not anyio's worker threads, which cost more per trip: bench/endpoints.py
measured every endpoint it tried cheaper against the SELECT baseline that way.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from interfaces.http.consistency import Settling


def one_trip(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint as a coroutine that runs it in the thread pool."""
    if inspect.iscoroutinefunction(endpoint) or inspect.isasyncgenfunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads parameters through __wrapped__
    async def run(*args: Any, **kwargs: Any) -> Any:
        result = await asyncio.to_thread(endpoint, *args, **kwargs)
        if isinstance(result, Settling):  # wait for the read model on the loop, not a thread
            return await result.respond()
        return result

    return run


ERROR_DESCRIPTIONS = {
    400: "Malformed request (JSON, query string, path or header)",
    401: "Not authenticated, or the token is invalid, expired or revoked",
    402: "The track is not paid for",
    403: "Not allowed for your role or for this object",
    404: "No such object, or not one you may see",
    405: "Method not allowed on this path",
    409: "Conflicts with the current state",
    410: "The one-time link or ticket was used, has expired or never existed",
    413: "Body too large",
    422: "Invalid input",
    429: "Too many attempts; see Retry-After",
    503: "A backing service is unavailable or the read model is lagging; see Retry-After",
}
# Paths that take a one-time key (from an emailed link, or a sign-in's ticket).
ONE_TIME_LINKS = ("/api/auth/verify-email/", "/api/auth/password/reset/confirm/",
                  "/api/auth/oauth/complete/")
# Paths outside /api/auth/ whose callers are limited (sign-in callbacks, exports).
RATE_LIMITED_ENDS = ("/callback/", "/export/")
# Paths whose student actions need the track paid for (PaymentRequired).
PAID_PREFIXES = ("/api/curriculum/", "/api/users/workspace/", "/api/quiz/quizzes/")


IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": ("Any unique string (a UUID, say). A retry with the same key and body "
                    "within 24 h answers the first outcome, marked Idempotent-Replayed, "
                    "instead of running again; the same key with another body is a 422."),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255,
               "pattern": "^[\\x21-\\x7e]+$"},
}


def _depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def error_statuses(route: APIRoute) -> set[int]:
    """The error statuses an operation can answer, from what it depends on."""
    from interfaces.http.dependencies import principal

    statuses = {400, 404, 422, 503}
    writes = bool((route.methods or set()) - {"GET", "HEAD"})
    if _depends_on(route.dependant, principal):
        statuses |= {401, 403, 409}
    if writes:
        statuses |= {409, 413}
        if route.path.startswith(PAID_PREFIXES):
            statuses.add(402)
    if route.path.startswith("/api/auth/") or route.path.endswith(RATE_LIMITED_ENDS):
        statuses |= {401, 429}
    if route.path.startswith(ONE_TIME_LINKS):
        statuses.add(410)
    return statuses


def _typed_path(path: str, endpoint: Callable[..., Any]) -> str:
    """The path with `:uuid` on every UUID parameter, so a literal path beside it
    ("/api/users/profile/" next to "/api/users/{user_id}/") is never taken for an id: a
    method that path does not answer is then a 405, not a 422 about the id."""
    hints = inspect.signature(endpoint).parameters
    for name, parameter in hints.items():
        annotation = parameter.annotation
        if annotation in (UUID, "UUID") and "{" + name + "}" in path:
            path = path.replace("{" + name + "}", "{" + name + ":uuid}")
    return path


class Router(APIRouter):
    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        path = _typed_path(path, endpoint)
        endpoint = one_trip(endpoint)
        super().add_api_route(path, endpoint, **kwargs)
        route = self.routes[-1]
        if isinstance(route, APIRoute) and route.include_in_schema:
            # Every error is the envelope, 422 too (instead of the framework's own shape).
            # The statuses follow from the route's dependencies, so it is made again with
            # them: the framework builds response schemas when it makes a route.
            from interfaces.http.schemas import AcceptedOut, ErrorOut

            self.routes.pop()
            documented: dict[int | str, dict[str, Any]] = {
                code: {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[code]}
                for code in sorted(error_statuses(route))}
            if (route.methods or set()) - {"GET", "HEAD"} and route.status_code != 202 and (
                    not route.path.endswith("/webhook/")) and (
                    route.response_model is not None):
                # A command answers with what it changed, or 202 if the read model lags.
                documented[202] = {"model": AcceptedOut,
                                   "description": "Stored; the read model is catching up"}
            kwargs["responses"] = {**documented, **(kwargs.get("responses") or {})}
            if (route.methods or set()) - {"GET", "HEAD"} and 401 in documented:
                extra = kwargs.get("openapi_extra") or {}
                kwargs["openapi_extra"] = {**extra, "parameters": [
                    *extra.get("parameters", []), IDEMPOTENCY_KEY]}
            super().add_api_route(path, endpoint, **kwargs)
