"""/api/audit/: an aggregate's history, and its state at a version or a moment."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel

from application.authorization import OVERSEERS
from domain.errors import Invalid
from interfaces.http.dependencies import AuditDep, Principal, require_roles
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router

router = Router(prefix="/api/audit", tags=["audit"])

Auditor = Annotated[Principal, Depends(require_roles(*OVERSEERS))]
AggregateType = Annotated[str, Path(pattern=r"^[a-z][a-z-]{1,40}$",
                                    description="account, student, trainer-capacity, "
                                                "curriculum, progress, submission, quiz, "
                                                "attempt or email-claim")]


class HistoryEntry(BaseModel):
    version: int
    event: str
    at: datetime
    actor_id: str | None
    reason: str | None
    data: dict[str, Any]


class StateOut(BaseModel):
    type: str
    id: UUID
    version: int
    as_of: datetime
    state: dict[str, Any]


@router.get("/{aggregate_type}/{aggregate_id}/history/", response_model=Page[HistoryEntry])
def history(request: Request, aggregate_type: AggregateType, aggregate_id: UUID, p: Auditor,
            audit: AuditDep, pages: Annotated[PageParams, Depends(page_params)]
            ) -> dict[str, Any]:
    """Every event of the aggregate: what, when, who caused it and why."""
    entries = audit.history(aggregate_type, aggregate_id)
    chunk = entries[pages.offset:pages.offset + pages.page_size]
    return paginate(request, pages, len(entries), chunk)


@router.get("/{aggregate_type}/{aggregate_id}/", response_model=StateOut)
def state(aggregate_type: AggregateType, aggregate_id: UUID, p: Auditor, audit: AuditDep,
          version: Annotated[int | None, Query(ge=1)] = None,
          at: Annotated[AwareDatetime | None, Query(
              description="RFC 3339 time with offset, e.g. 2026-11-24T09:00:00Z")] = None,
          ) -> dict[str, Any]:
    """The aggregate as it was at `version`, or at time `at` (now when neither is given)."""
    if version is not None and at is not None:
        raise Invalid("Ask for a version or a time, not both", code="VERSION_OR_TIME")
    return audit.state(aggregate_type, aggregate_id, version=version, at=at)
