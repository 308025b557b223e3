"""Workspaces: a student's own (/api/users/workspace/…) and the admins' view (/api/workspaces/)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from application.authorization import ADMINISTRATORS, OVERSEERS
from domain.errors import Conflict, NotFound
from interfaces.http.dependencies import (
    Principal,
    PrincipalDep,
    WorkspaceCommandsDep,
    WorkspaceViewsDep,
    require_roles,
)
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router
from projections.workspaces import WorkspacesView

router = Router(tags=["workspaces"])

Staff = Annotated[Principal, Depends(require_roles(*ADMINISTRATORS))]
Overseer = Annotated[Principal, Depends(require_roles(*OVERSEERS))]
TERMINAL = ("running", "failed", "stopped")


class WorkspaceOut(BaseModel):
    id: UUID
    student_id: UUID
    state: str
    reason: str | None
    detail: str | None
    track: str | None
    image: str | None
    container_name: str
    launches: int
    requested_at: datetime | None
    running_at: datetime | None
    stopped_at: datetime | None
    last_activity_at: datetime | None
    updated_at: datetime


class UrlOut(BaseModel):
    url: str
    password: str


def _row(workspace_views: WorkspacesView, student_id: UUID, position: int = 0
         ) -> dict[str, Any]:
    workspace_views.catch_up(position)
    row = workspace_views.of_student(student_id)
    if row is None:
        raise NotFound("No workspace yet; launch one first")
    return dict(row)


def _out(response: Response, row: dict[str, Any], code: int = 200,
         position: int = 0) -> WorkspaceOut:
    response.status_code = code
    response.headers["X-Position"] = str(position)
    return WorkspaceOut(**{k: v for k, v in row.items() if k in WorkspaceOut.model_fields})


@router.post("/api/users/workspace/create/", status_code=status.HTTP_202_ACCEPTED,
             response_model=WorkspaceOut)
def create(p: PrincipalDep, workspaces: WorkspaceCommandsDep,
           workspace_views: WorkspaceViewsDep, response: Response) -> WorkspaceOut:
    """Launch (or return) your workspace; provisioning happens in the background."""
    position, requested = workspaces.launch(p.actor)
    row = _row(workspace_views, p.id, position)
    if requested:
        # What this command did; provisioning may already be further along (see progress).
        return _out(response, {**row, "state": "requested", "reason": None, "detail": None},
                    202, position)
    return _out(response, row, 200 if row["state"] == "running" else 202, position)


@router.get("/api/users/workspace/status/", response_model=WorkspaceOut)
def workspace_status(p: PrincipalDep, workspaces: WorkspaceCommandsDep,
                     workspace_views: WorkspaceViewsDep, response: Response) -> WorkspaceOut:
    row = _row(workspace_views, p.id)
    if row["state"] == "running":
        workspaces.seen(p.id)
    return _out(response, row)


@router.get("/api/users/workspace/url/", response_model=UrlOut)
def url(p: PrincipalDep, workspaces: WorkspaceCommandsDep,
        workspace_views: WorkspaceViewsDep) -> UrlOut:
    row = _row(workspace_views, p.id)
    if row["state"] != "running" or not row["host_port"]:
        raise Conflict("The workspace is not running", code="WORKSPACE_NOT_RUNNING",
                       state=row["state"])
    workspaces.seen(p.id)
    return UrlOut(url=f"http://127.0.0.1:{row['host_port']}/",
                  password=workspaces.passwords.password_for(p.id))


@router.delete("/api/users/workspace/stop/", status_code=status.HTTP_202_ACCEPTED,
               response_model=WorkspaceOut)
def stop(p: PrincipalDep, workspaces: WorkspaceCommandsDep,
         workspace_views: WorkspaceViewsDep, response: Response) -> WorkspaceOut:
    _row(workspace_views, p.id)
    position = workspaces.stop(p.actor, p.id, "user")
    return _out(response, _row(workspace_views, p.id, position), 202, position)


POLL_SECONDS = 0.2  # only while this process does not hear the models' positions
KEEP_ALIVE_SECONDS = 15.0


@router.get("/api/users/workspace/progress/",
            responses={200: {"content": {"text/event-stream": {}}}})
async def progress(p: PrincipalDep, workspace_views: WorkspaceViewsDep,
                   timeout: Annotated[float, Query(gt=0, le=600)] = 180
                   ) -> EventSourceResponse:
    """Server-sent events: each state change (requested → provisioning → running, or
    failed with the reason), until a final state or the timeout."""
    await run_in_threadpool(_row, workspace_views, p.id)
    return EventSourceResponse(_states(workspace_views, p.id, timeout),
                               ping=KEEP_ALIVE_SECONDS, sep="\n")


async def _states(view: WorkspacesView, student_id: UUID, timeout: float
                  ) -> AsyncIterator[ServerSentEvent]:
    deadline = time.monotonic() + timeout
    last: tuple[str, int] | None = None
    while time.monotonic() < deadline:
        seen = view.board.heard(view.position_key)  # before reading: a change is not missed
        row = await run_in_threadpool(view.of_student, student_id)
        if row is not None and (row["state"], row["launches"]) != last:
            last = (row["state"], row["launches"])
            payload = {"state": row["state"], "reason": row["reason"], "detail": row["detail"],
                       "launch": row["launches"]}
            yield ServerSentEvent(json.dumps(payload), event=row["state"])
            if row["state"] in TERMINAL and row["launches"]:
                return
        # Woken when the workspaces model moves (its NOTIFY), not by polling per client.
        await view.board.next_change(view.position_key, seen, POLL_SECONDS,
                                     max(0.0, deadline - time.monotonic()))


@router.get("/api/workspaces/", response_model=Page[WorkspaceOut])
def all_workspaces(request: Request, p: Overseer, workspace_views: WorkspaceViewsDep,
                   pages: Annotated[PageParams, Depends(page_params)],
                   state: Annotated[str | None, Query(max_length=20)] = None) -> dict[str, Any]:
    count, rows = workspace_views.page(offset=pages.offset, limit=pages.page_size,
                                       state=state)
    return paginate(request, pages, count, [
        WorkspaceOut(**{k: v for k, v in dict(r).items() if k in WorkspaceOut.model_fields})
        for r in rows])


@router.post("/api/workspaces/{student_id}/stop/", status_code=status.HTTP_202_ACCEPTED,
             response_model=WorkspaceOut)
def admin_stop(student_id: UUID, p: Staff, workspaces: WorkspaceCommandsDep,
               workspace_views: WorkspaceViewsDep, response: Response) -> WorkspaceOut:
    _row(workspace_views, student_id)
    position = workspaces.stop(p.actor, student_id, "admin")
    return _out(response, _row(workspace_views, student_id, position), 202, position)
