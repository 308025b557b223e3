"""/api/events/: the log for analysts (CloudEvents, live tail), AsyncAPI, and xAPI."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse, ServerSentEvent

from application.authorization import EVENT_READERS
from interfaces.analytics import asyncapi_document
from interfaces.http.dependencies import (
    EventStreamDep,
    PositionBoardDep,
    Principal,
    require_roles,
)
from interfaces.http.routing import Router
from projections.analytics import EventStream
from projections.base import LOG, PositionBoard

router = Router(prefix="/api/events", tags=["events"])

Reader = Annotated[Principal, Depends(require_roles(*EVENT_READERS))]
After = Annotated[int, Query(ge=0, description="Position to read after (0: the beginning)")]
Limit = Annotated[int, Query(ge=1, le=1000)]
TAIL_POLL_SECONDS = 0.5
HEARTBEAT_SECONDS = 15.0


class EventsPageOut(BaseModel):
    results: list[dict[str, Any]] = Field(description="CloudEvents 1.0, oldest first")
    after: int
    last: int = Field(description="Position of the last event here; read after it next")
    next: str | None


@router.get("/", response_model=EventsPageOut,
            responses={200: {"content": {"text/event-stream": {}}}})
async def events(
    request: Request, p: Reader, stream: EventStreamDep, board: PositionBoardDep,
    after: After = 0, limit: Limit = 100,
    types: Annotated[str | None, Query(max_length=2000, description=(
        "Comma-separated CloudEvents types, e.g. apranova.quiz.Published"))] = None,
    last_event_id: Annotated[int | None, Header(ge=0)] = None,
    max_seconds: Annotated[float, Query(gt=0, le=3600, description=(
        "How long a live tail stays open"))] = 3600,
) -> Any:
    """CloudEvents 1.0 after a position. With `Accept: text/event-stream`, a live tail that
    resumes after `Last-Event-ID`."""
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    # Content negotiation on Accept, which every client sends anyway (not a parameter).
    if "text/event-stream" in request.headers.get("accept", ""):
        start = last_event_id if last_event_id is not None else after
        return EventSourceResponse(_tail(stream, board, start, wanted, max_seconds),
                                   ping=HEARTBEAT_SECONDS, sep="\n")
    page, last = await run_in_threadpool(stream.page, after, limit, wanted)
    following = str(request.url.include_query_params(after=last)) if page else None
    return EventsPageOut(results=page, after=after, last=last, next=following)


async def _tail(stream: EventStream, board: PositionBoard, after: int,
                wanted: set[str] | None, max_seconds: float
                ) -> AsyncIterator[ServerSentEvent]:
    """The log after `after` until `max_seconds` pass (the response ends it earlier when
    the client goes, and sends the keep-alive comments)."""
    deadline = time.monotonic() + max_seconds
    while time.monotonic() < deadline:
        seen = board.heard(LOG)  # before reading, so an append meanwhile is not missed
        page, last = await run_in_threadpool(stream.page, after, 200, wanted)
        for event in page:
            yield ServerSentEvent(json.dumps(event, separators=(",", ":")),
                                  event=event["type"], id=str(event["sequence"]))
        if page:
            after = last
            continue
        # Woken by the next append's NOTIFY, not by polling each client's query.
        await board.next_change(LOG, seen, TAIL_POLL_SECONDS,
                                max(0.0, deadline - time.monotonic()))


@router.get("/asyncapi.json")
def asyncapi(request: Request) -> dict[str, Any]:
    """AsyncAPI 3.0 description of every event type, generated from the domain."""
    return asyncapi_document(str(request.base_url).rstrip("/"))


@router.get("/xapi/")
def xapi(request: Request, p: Reader, stream: EventStreamDep, after: After = 0,
         limit: Limit = 100) -> dict[str, Any]:
    """Quiz attempts and grades as xAPI statements (statement id = event id)."""
    home = str(request.base_url).rstrip("/")
    statements, last = stream.xapi(after, limit, home)
    more = str(request.url.include_query_params(after=last)) if statements else ""
    return {"statements": statements, "more": more}
