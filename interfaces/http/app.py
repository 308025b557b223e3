"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from infrastructure.background import Background
from infrastructure.bootstrap import Container
from infrastructure.settings import Settings
from interfaces.http.errors import install_error_handlers
from interfaces.http.idempotency import Idempotency, bearer_subject
from interfaces.http.middleware import BodyLimit, Deadline, Metrics, TextGuard
from interfaces.http.routers import (
    audit,
    auth,
    curriculum,
    events,
    github,
    health,
    mfa,
    oauth,
    payments,
    quizzes,
    users,
    workspaces,
)

DESCRIPTION = """
Event-sourced backend of the ApraNova learning-management system.

Every change is an event; reads come from projections. A command's response carries
`X-Position`; send it back as the `X-Position` header on a read to see your own write.
Errors use the envelope `{"status": "error", "error": {"code", "message", "details"}}`.
"""


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options that are policy: forwarded headers only from the configured
    proxies (uvicorn believes loopback by default, which would let anyone on the host pick
    the address the login limit counts), and no Server header."""
    trusted = settings.trusted_proxies.strip()
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or "",
            "server_header": False}


# What TextGuard lets through in a query string or path: no NUL (a JSON Schema pattern).
NO_NUL = "^[^\\x00]*$"


def _document_parameters(app: FastAPI) -> None:
    """The document says of parameters what the API does with them. An optional query or
    header parameter is absent or has a value: HTTP has no null, so the document does not
    offer `null` as one (a client sending the word gets a 422). A text parameter in the
    query or path holds no NUL: TextGuard refuses one with a 400 before any route."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = made()
            for operations in spec.get("paths", {}).values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        schema = parameter.get("schema", {})
                        branches = [b for b in schema.get("anyOf", ())
                                    if b.get("type") != "null"]
                        if "anyOf" in schema and len(branches) == 1:
                            del schema["anyOf"]
                            schema.update(branches[0])
                        if (parameter.get("in") in ("query", "path")
                                and schema.get("type") == "string"
                                and not {"pattern", "format", "enum", "const"} & schema.keys()):
                            schema["pattern"] = NO_NUL
        return app.openapi_schema or made()

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(container: Container, owns_container: bool = False) -> FastAPI:
    """The API on `container`. While it runs it hears session revocations announced by
    other API processes; with `owns_container` it also closes the container at shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threads = container.settings.api_threads
        to_thread.current_default_thread_limiter().total_tokens = threads
        # Blocking endpoints make their one trip on the loop's executor (routing.py).
        executor = ThreadPoolExecutor(threads, thread_name_prefix="api")
        asyncio.get_running_loop().set_default_executor(executor)
        listeners = Background(container)
        listeners.start_session_listener()
        listeners.start_position_listener()
        try:
            yield
        finally:
            executor.shutdown(wait=False)
            listeners.stop()
            if owns_container:
                container.close()

    # Swagger UI and ReDoc from the package's own assets, not a CDN: /docs works offline.
    app = FastAPIOffline(title="ApraNova API", version="0.1.0", description=DESCRIPTION,
                         lifespan=lifespan)
    app.state.container = container
    install_error_handlers(app)
    _document_parameters(app)
    # FastAPI tries routes in order until one matches; an included router adds about
    # 10 us per route tried (measured: 670 us to pass all 69), a route of the app's own
    # list about 2.5 us. The routers' routes already carry their prefixes and tags, so
    # they join the app's list directly, the ones students hit most first.
    for module in (quizzes, curriculum, users, auth, mfa, oauth, workspaces, payments,
                   github, events, audit, health):
        app.router.routes.extend(module.router.routes)
    app.add_middleware(Idempotency, records=container.idempotency,
                       subject=bearer_subject(container.tokens, container.sessions),
                       router=app.router)
    app.add_middleware(BodyLimit, max_bytes=container.settings.max_body_bytes,
                       upload_bytes=container.settings.max_upload_bytes)
    app.add_middleware(TextGuard)
    app.add_middleware(Deadline, seconds=container.settings.request_deadline_seconds)
    app.add_middleware(Metrics, access_log=container.settings.access_log)
    return app


def create_app_in_worker() -> FastAPI:
    """The app for one of several API worker processes (`apranova serve --workers N`):
    its own container from the environment the serving process prepared, closed when
    the worker stops; the log's followers run in the serving process, not here."""
    from infrastructure.bootstrap import build
    from infrastructure.logs import configure
    from infrastructure.settings import Settings

    configure(Settings().log_format)
    return create_app(build(), owns_container=True)
