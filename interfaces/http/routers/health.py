"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Response
from fastapi.responses import JSONResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
    multiprocess,
)

from infrastructure import messaging
from interfaces.http.dependencies import (
    DatabasePoolDep,
    EventStoreDep,
    PolicyDispatcherDep,
    ReadModelsDep,
    RedisDep,
)
from interfaces.http.routing import Router
from projections import stalls

router = Router(tags=["health"])

# With several API processes (`serve --workers N`) each keeps its metrics in a file of
# PROMETHEUS_MULTIPROC_DIR and a scrape adds them up; these gauges are read from the
# database at each scrape, so the latest reading is the one that counts.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ
READ: dict[str, Any] = {"multiprocess_mode": "mostrecent"}

MODEL_POSITION = Gauge("apranova_read_model_position",
                       "Position in the log up to which the read model is applied", ["model"],
                       **READ)
MODEL_PENDING = Gauge("apranova_read_model_pending_events",
                      "Followed events in the log the read model has yet to apply", ["model"],
                      **READ)
MODEL_STALLED = Gauge("apranova_read_model_stalled",
                      "1 while the read model is stopped at an event it cannot apply",
                      ["model"], **READ)
LOG_HEAD = Gauge("apranova_log_position", "Position of the last event in the log", **READ)
RELAY_POSITION = Gauge("apranova_relay_position",
                       "Position in the log up to which the relay has enqueued", **READ)
POLICY_PENDING = Gauge("apranova_policy_pending",
                       "Process-manager (policy, event) pairs enqueued and not yet done", **READ)
QUEUE_DEPTH = Gauge("apranova_queue_depth",
                    "Process-manager messages waiting in Redis", **READ)
POLICY_FAILURES = Gauge("apranova_policy_failures",
                        "Process-manager (policy, event) pairs given up on after retries",
                        **READ)


READY_CHECK_SECONDS = 1.0
# Probes get threads of their own: during an outage the API's threads may all be held.
_PROBES = ThreadPoolExecutor(4, thread_name_prefix="readiness")


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process serves: no database, no thread, nothing that an outage could hold."""
    return {"status": "ok"}


async def _check(probe: Callable[[], Any]) -> tuple[str, Any]:
    """A dependency's state within READY_CHECK_SECONDS: a hung one is "unavailable"."""
    try:
        running = asyncio.get_running_loop().run_in_executor(_PROBES, probe)
        return "ok", await asyncio.wait_for(running, READY_CHECK_SECONDS)
    except TimeoutError:
        return f"unavailable: no answer within {READY_CHECK_SECONDS:g} s", None
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}", None


@router.get("/readyz")
async def readyz(pool: DatabasePoolDep, redis: RedisDep) -> JSONResponse:
    """Ready when PostgreSQL and Redis answer; `degraded` (still 200: reads and commands
    work, some read models lag) while a read model is stopped at an event. Answers within
    about a second, saying what is down."""

    def postgres() -> list[dict[str, Any]]:
        with pool.connection(timeout=READY_CHECK_SECONDS) as conn:
            conn.execute("SELECT 1")
            return [{"model": s.model, "position": s.position, "topic": s.topic,
                     "error": s.error, "attempts": s.attempts} for s in stalls.current(conn)]

    (pg, found), (rd, _) = await asyncio.gather(_check(postgres), _check(redis.ping))
    checks = {"postgres": pg, "redis": rd}
    stalled: list[dict[str, Any]] = found or []
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
def metrics(pool: DatabasePoolDep, models: ReadModelsDep, store: EventStoreDep,
            dispatcher: PolicyDispatcherDep) -> Response:
    try:
        with pool.connection(timeout=2) as conn:
            for status in stalls.statuses(conn, models):
                MODEL_POSITION.labels(status.model).set(status.position)
                MODEL_PENDING.labels(status.model).set(status.pending)
                MODEL_STALLED.labels(status.model).set(1 if status.stall else 0)
        LOG_HEAD.set(store.recorder.max_notification_id() or 0)
        progress = messaging.progress(pool)
        RELAY_POSITION.set(progress.relay_position)
        POLICY_PENDING.set(progress.pending)
        POLICY_FAILURES.set(progress.failed)
    except Exception:  # the process's own metrics still answer while the database is away
        pass
    with contextlib.suppress(Exception):
        QUEUE_DEPTH.set(messaging.queue_depth(dispatcher))
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
