"""/api/users/: profiles, administration of accounts, trainers and their students."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, StringConstraints

from application.accounts import UserChanges
from application.authorization import ADMINISTRATORS, ERASERS, OVERSEERS, may_see_learner
from domain.errors import NotFound
from domain.roles import Role, Track
from interfaces.http.consistency import Settling, answer_after
from interfaces.http.dependencies import (
    AccountCommandsDep,
    Principal,
    PrincipalDep,
    PrivacyCommandsDep,
    TrainerCapacityDep,
    UsersDep,
    read_position,
    require_roles,
)
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router
from interfaces.http.schemas import Body, Email, Name, NewPassword, Reason, UserOut
from projections.users import UsersView

router = Router(prefix="/api/users", tags=["users"])

Staff = Annotated[Principal, Depends(require_roles(*ADMINISTRATORS))]
Overseer = Annotated[Principal, Depends(require_roles(*OVERSEERS))]
Eraser = Annotated[Principal, Depends(require_roles(*ERASERS))]
Position = Annotated[int | None, Depends(read_position)]


class ProfileIn(Body):
    name: Name


class CreateUserIn(Body):
    email: Email
    password: NewPassword
    name: Name
    role: Role
    track: Track | None = None


class UpdateUserIn(Body):
    name: Name | None = None
    role: Role | None = None
    track: Track | None = None
    is_active: bool | None = None
    reason: Reason = ""


class AssignTrainerIn(Body):
    student_id: UUID
    trainer_id: UUID


class TrainerOut(BaseModel):
    id: UUID
    name: str
    email: str
    student_count: int
    capacity: int
    available: int


def _user(users: UsersView, user_id: UUID, position: int | None) -> UserOut:
    users.catch_up(position)
    row = users.get(user_id)
    if row is None:
        raise NotFound("User not found")
    return UserOut.from_row(row)


def _set_position(response: Response, position: int) -> None:
    # Clients pass this back as X-Position on reads to see their own write.
    response.headers["X-Position"] = str(position)


def _user_after(users: UsersView, user_id: UUID, position: int, status_code: int = 200
                ) -> Settling:
    return answer_after(users, position, lambda: _user(users, user_id, None), status_code)


@router.get("/profile/", response_model=UserOut)
def get_profile(p: PrincipalDep, users: UsersDep, position: Position) -> UserOut:
    return _user(users, p.id, position)


@router.put("/profile/", response_model=UserOut)
def update_profile(body: ProfileIn, p: PrincipalDep, accounts: AccountCommandsDep,
                   users: UsersDep) -> Settling:
    return _user_after(users, p.id, accounts.update_profile(p.actor, body.name))


# An export is one JSON document, streamed as it is read from the log.
EXPORT: dict[int | str, dict[str, Any]] = {200: {
    "description": "Everything kept about the person, as JSON",
    "content": {"application/json": {"schema": {"type": "object"}}}}}


def _export(pieces: Iterator[str], user_id: UUID) -> StreamingResponse:
    return StreamingResponse(
        (piece.encode() for piece in pieces), media_type="application/json",
        headers={"Content-Disposition":
                 f'attachment; filename="apranova-personal-data-{user_id}.json"'})


@router.get("/profile/export/", response_class=StreamingResponse, responses=EXPORT)
def export_profile(p: PrincipalDep, privacy: PrivacyCommandsDep) -> StreamingResponse:
    return _export(privacy.export(p.actor, p.id), p.id)


@router.get("/trainers/", response_model=Page[TrainerOut])
def trainers(
    request: Request, p: PrincipalDep, users: UsersDep, capacity: TrainerCapacityDep,
    position: Position, pages: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    users.catch_up(position)
    count, rows = users.active_trainers(offset=pages.offset, limit=pages.page_size)
    results = [
        TrainerOut(id=r["id"], name=r["name"], email=r["email"], student_count=r["student_count"],
                   capacity=capacity, available=max(capacity - r["student_count"], 0))
        for r in rows
    ]
    return paginate(request, pages, count, results)


@router.post("/assign-trainer/", response_model=UserOut)
def assign_trainer(body: AssignTrainerIn, p: Staff, accounts: AccountCommandsDep,
                   users: UsersDep) -> Settling:
    position = accounts.assign_trainer(p.actor, body.student_id, body.trainer_id)
    return _user_after(users, body.student_id, position)


@router.get("/", response_model=Page[UserOut])
def list_users(
    request: Request, p: Overseer, users: UsersDep, position: Position,
    pages: Annotated[PageParams, Depends(page_params)],
    role: Role | None = None,
    is_active: bool | None = None,
    search: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    users.catch_up(position)
    count, rows = users.page(offset=pages.offset, limit=pages.page_size,
                             role=role.value if role else None, active=is_active,
                             search=search)
    return paginate(request, pages, count, [UserOut.from_row(r) for r in rows])


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: CreateUserIn, p: Staff, accounts: AccountCommandsDep,
                users: UsersDep) -> Settling:
    result = accounts.create_account(p.actor, body.email, body.name, body.password, body.role,
                                     body.track)
    return _user_after(users, result.account_id, result.position, status.HTTP_201_CREATED)


@router.get("/{user_id}/", response_model=UserOut)
def get_user(user_id: UUID, p: PrincipalDep, users: UsersDep, position: Position) -> UserOut:
    user = _user(users, user_id, position)
    if not may_see_learner(p.actor, user.id, user.trainer_id):
        # Not 403: other people's ids are not confirmed to exist.
        raise NotFound("User not found")
    return user


@router.get("/{user_id}/export/", response_class=StreamingResponse, responses=EXPORT)
def export_user(user_id: UUID, p: Staff, privacy: PrivacyCommandsDep) -> StreamingResponse:
    return _export(privacy.export(p.actor, user_id), user_id)


class EraseIn(Body):
    # Kept readable after the erasure, so it must not name the person.
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500)]


class ErasureOut(BaseModel):
    id: UUID
    erased: bool


@router.post("/{user_id}/erase/", response_model=ErasureOut)
def erase_user(user_id: UUID, body: EraseIn, p: Eraser, privacy: PrivacyCommandsDep,
               response: Response) -> ErasureOut:
    erasure = privacy.erase(p.actor, user_id, body.reason)
    _set_position(response, erasure.position)
    return ErasureOut(id=erasure.account_id, erased=True)


@router.put("/{user_id}/", response_model=UserOut)
def update_user(
    user_id: UUID, body: UpdateUserIn, p: Staff, accounts: AccountCommandsDep, users: UsersDep,
) -> Settling:
    changes = UserChanges(name=body.name, role=body.role, track=body.track,
                          is_active=body.is_active, reason=body.reason)
    return _user_after(users, user_id, accounts.update_user(p.actor, user_id, changes))


@router.delete("/{user_id}/", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(
    user_id: UUID, p: PrincipalDep, accounts: AccountCommandsDep,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    position = accounts.deactivate(p.actor, user_id, reason)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _set_position(response, position)
    return response
