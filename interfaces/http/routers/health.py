"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

from infrastructure import messaging
from interfaces.http.dependencies import ContainerDep
from interfaces.http.routing import Router
from projections import stalls

router = Router(tags=["health"])

MODEL_POSITION = Gauge("apranova_read_model_position",
                       "Position in the log up to which the read model is applied", ["model"])
MODEL_PENDING = Gauge("apranova_read_model_pending_events",
                      "Followed events in the log the read model has yet to apply", ["model"])
MODEL_STALLED = Gauge("apranova_read_model_stalled",
                      "1 while the read model is stopped at an event it cannot apply",
                      ["model"])

POLICY_FAILURES = Gauge("apranova_policy_failures",
                        "Process-manager (policy, event) pairs given up on after retries")


@router.get("/livez")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(c: ContainerDep) -> JSONResponse:
    """Ready when PostgreSQL and Redis answer; `degraded` (still 200: reads and commands
    work, some read models lag) while a read model is stopped at an event."""
    checks: dict[str, str] = {}
    stalled: list[dict[str, Any]] = []
    try:
        with c.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
            stalled = [{"model": s.model, "position": s.position, "topic": s.topic,
                        "error": s.error, "attempts": s.attempts}
                       for s in stalls.current(conn)]
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unavailable: {type(exc).__name__}"
    try:
        c.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        checks["read_models"] = "stalled" if stalled else "ok"
        return JSONResponse({"status": "degraded" if stalled else "ok", "checks": checks,
                             "stalled": stalled})
    return JSONResponse(
        {"status": "error", "error": {"code": "SERVICE_UNAVAILABLE",
                                      "message": "Not ready", "details": checks}},
        status_code=503,
    )


@router.get("/metrics", include_in_schema=False)
def metrics(c: ContainerDep) -> Response:
    try:
        with c.pool.connection(timeout=2) as conn:
            for status in stalls.statuses(conn, c.named_views):
                MODEL_POSITION.labels(status.model).set(status.position)
                MODEL_PENDING.labels(status.model).set(status.pending)
                MODEL_STALLED.labels(status.model).set(1 if status.stall else 0)
        POLICY_FAILURES.set(messaging.failure_count(c.pool))
    except Exception:  # the process's own metrics still answer while the database is away
        pass
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
