"""The error envelope, for our own errors and the framework's alike.

{"status": "error", "error": {"code": ..., "message": ..., "details": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
import redis
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from application.auth import RateLimited, Unauthenticated
from domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    PaymentRequired,
    TooLarge,
)
from projections.base import ProjectionLagging

log = logging.getLogger("apranova.http")

STATUS_CODES = {
    400: "BAD_REQUEST", 401: "NOT_AUTHENTICATED", 402: "PAYMENT_REQUIRED",
    403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 406: "NOT_ACCEPTABLE", 409: "CONFLICT", 410: "GONE",
    413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 422: "VALIDATION_ERROR",
    429: "RATE_LIMITED", 500: "INTERNAL_ERROR", 503: "SERVICE_UNAVAILABLE",
}

DOMAIN_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401), (RateLimited, 429), (NotFound, 404), (Forbidden, 403),
    (Conflict, 409), (TooLarge, 413), (Invalid, 422), (PaymentRequired, 402), (Gone, 410),
)

UNAVAILABLE = (
    StoreOperationalError, psycopg.OperationalError, PoolTimeout, redis.ConnectionError,
    redis.TimeoutError,
)


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"status": "error",
            "error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_details(exc: RequestValidationError) -> tuple[int, str, dict[str, Any]]:
    details: dict[str, list[str]] = {}
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return 400, "MALFORMED_JSON", {"body": ["Request body is not valid JSON"]}
        location = [str(part) for part in err.get("loc", ()) if part != "body"]
        if err.get("type") in ("union_tag_not_found", "union_tag_invalid"):
            # A body whose fields follow from one of them (its tag): name that field.
            location.append(str(err.get("ctx", {}).get("discriminator", "")).strip("'"))
        message = str(err.get("msg", "Invalid value"))
        if err.get("type") == "extra_forbidden":
            message = "Unknown field"
        details.setdefault(".".join(location) or "body", []).append(message)
    return 422, "VALIDATION_ERROR", details


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "__NONE__"})
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        status = next((s for cls, s in DOMAIN_STATUS if isinstance(exc, cls)), 400)
        headers: dict[str, str] = {}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        if status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        return error_response(status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, code, details = _validation_details(exc)
        message = "Invalid input data" if status == 422 else "Malformed request body"
        return error_response(status, code, message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "ERROR")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # The framework names the methods of the first route that matched the path;
            # Allow must name every method the path answers.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(AggregateNotFoundError)
    async def not_found(_: Request, exc: AggregateNotFoundError) -> JSONResponse:
        return error_response(404, "NOT_FOUND", "Object not found")

    @app.exception_handler(IntegrityError)
    async def conflict(_: Request, exc: IntegrityError) -> JSONResponse:
        return error_response(409, "CONCURRENT_MODIFICATION",
                              "Someone else changed this at the same time; try again")

    @app.exception_handler(ProjectionLagging)
    async def lagging(_: Request, exc: ProjectionLagging) -> JSONResponse:
        return error_response(503, "PROJECTION_LAGGING",
                              "The read model has not caught up with that position yet",
                              headers={"Retry-After": "1"})

    for unavailable in UNAVAILABLE:
        @app.exception_handler(unavailable)
        async def service_unavailable(_: Request, exc: Exception) -> JSONResponse:
            log.warning("dependency unavailable: %r", exc)
            return error_response(503, "SERVICE_UNAVAILABLE",
                                  "A backing service is unavailable; try again shortly",
                                  headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "INTERNAL_ERROR", "Internal server error")
