"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from infrastructure.bootstrap import Container
from interfaces.http.errors import install_error_handlers
from interfaces.http.middleware import BodyLimit, Metrics
from interfaces.http.routers import (
    audit,
    auth,
    curriculum,
    events,
    github,
    health,
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


def create_app(container: Container) -> FastAPI:
    app = FastAPI(title="ApraNova API", version="0.1.0", description=DESCRIPTION)
    app.state.container = container
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(users.router)
    app.include_router(curriculum.router)
    app.include_router(quizzes.router)
    app.include_router(payments.router)
    app.include_router(github.router)
    app.include_router(workspaces.router)
    app.include_router(audit.router)
    app.include_router(events.router)
    app.add_middleware(BodyLimit, max_bytes=container.settings.max_body_bytes,
                       upload_bytes=container.settings.max_upload_bytes)
    app.add_middleware(Metrics)
    return app
