"""/api/users/: profiles, administration of accounts, trainers and their students."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request, Response, status
from pydantic import BaseModel

from application.accounts import UserChanges
from application.authorization import ADMINISTRATORS, OVERSEERS, may_see_learner
from domain.errors import NotFound
from domain.roles import Role, Track
from infrastructure.bootstrap import Container
from interfaces.http.consistency import Settling, answer_after
from interfaces.http.dependencies import (
    ContainerDep,
    Principal,
    PrincipalDep,
    read_position,
    require_roles,
)
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router
from interfaces.http.schemas import Body, Email, Name, NewPassword, Reason, UserOut

router = Router(prefix="/api/users", tags=["users"])

Staff = Annotated[Principal, Depends(require_roles(*ADMINISTRATORS))]
Overseer = Annotated[Principal, Depends(require_roles(*OVERSEERS))]
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


def _user(c: Container, user_id: UUID, position: int | None) -> UserOut:
    c.users.catch_up(position)
    row = c.users.get(user_id)
    if row is None:
        raise NotFound("User not found")
    return UserOut.from_row(row)


def _set_position(response: Response, position: int) -> None:
    # Clients pass this back as X-Position on reads to see their own write.
    response.headers["X-Position"] = str(position)


def _user_after(c: Container, user_id: UUID, position: int, status_code: int = 200) -> Settling:
    return answer_after(c.users, position, lambda: _user(c, user_id, None), status_code)


@router.get("/profile/", response_model=UserOut)
def get_profile(p: PrincipalDep, c: ContainerDep, position: Position) -> UserOut:
    return _user(c, p.id, position)


@router.put("/profile/", response_model=UserOut)
def update_profile(body: ProfileIn, p: PrincipalDep, c: ContainerDep) -> Settling:
    return _user_after(c, p.id, c.accounts.update_profile(p.actor, body.name))


@router.get("/trainers/", response_model=Page[TrainerOut])
def trainers(
    request: Request, p: PrincipalDep, c: ContainerDep, position: Position,
    pages: Annotated[PageParams, Depends(page_params)],
) -> dict[str, Any]:
    c.users.catch_up(position)
    count, rows = c.users.active_trainers(offset=pages.offset, limit=pages.page_size)
    capacity = c.settings.trainer_capacity
    results = [
        TrainerOut(id=r["id"], name=r["name"], email=r["email"], student_count=r["student_count"],
                   capacity=capacity, available=max(capacity - r["student_count"], 0))
        for r in rows
    ]
    return paginate(request, pages, count, results)


@router.post("/assign-trainer/", response_model=UserOut)
def assign_trainer(body: AssignTrainerIn, p: Staff, c: ContainerDep) -> Settling:
    position = c.accounts.assign_trainer(p.actor, body.student_id, body.trainer_id)
    return _user_after(c, body.student_id, position)


@router.get("/", response_model=Page[UserOut])
def list_users(
    request: Request, p: Overseer, c: ContainerDep, position: Position,
    pages: Annotated[PageParams, Depends(page_params)],
    role: Role | None = None,
    is_active: bool | None = None,
    search: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    c.users.catch_up(position)
    count, rows = c.users.page(offset=pages.offset, limit=pages.page_size,
                               role=role.value if role else None, active=is_active,
                               search=search)
    return paginate(request, pages, count, [UserOut.from_row(r) for r in rows])


@router.post("/", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: CreateUserIn, p: Staff, c: ContainerDep) -> Settling:
    result = c.accounts.create_account(p.actor, body.email, body.name, body.password, body.role,
                                       body.track)
    return _user_after(c, result.account_id, result.position, status.HTTP_201_CREATED)


@router.get("/{user_id}/", response_model=UserOut)
def get_user(user_id: UUID, p: PrincipalDep, c: ContainerDep, position: Position) -> UserOut:
    user = _user(c, user_id, position)
    if not may_see_learner(p.actor, user.id, user.trainer_id):
        # Not 403: other people's ids are not confirmed to exist.
        raise NotFound("User not found")
    return user


@router.put("/{user_id}/", response_model=UserOut)
def update_user(
    user_id: UUID, body: UpdateUserIn, p: Staff, c: ContainerDep
) -> Settling:
    changes = UserChanges(name=body.name, role=body.role, track=body.track,
                          is_active=body.is_active, reason=body.reason)
    return _user_after(c, user_id, c.accounts.update_user(p.actor, user_id, changes))


@router.delete("/{user_id}/", status_code=status.HTTP_204_NO_CONTENT)
def delete_user(
    user_id: UUID, p: PrincipalDep, c: ContainerDep,
    reason: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    position = c.accounts.deactivate(p.actor, user_id, reason)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    _set_position(response, position)
    return response
