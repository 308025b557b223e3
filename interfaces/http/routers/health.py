"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from interfaces.http.dependencies import ContainerDep
from interfaces.http.routing import Router

router = Router(tags=["health"])


@router.get("/livez")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(c: ContainerDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with c.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unavailable: {type(exc).__name__}"
    try:
        c.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    if ready:
        return JSONResponse({"status": "ok", "checks": checks})
    return JSONResponse(
        {"status": "error", "error": {"code": "SERVICE_UNAVAILABLE",
                                      "message": "Not ready", "details": checks}},
        status_code=503,
    )


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
