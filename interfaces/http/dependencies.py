"""Request-scoped dependencies: the container, the authenticated principal, role guards."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from application.accounts import Actor
from application.auth import Unauthenticated
from domain.errors import Forbidden
from domain.roles import Role
from infrastructure.bootstrap import Container

bearer = HTTPBearer(auto_error=False, description="JWT access token")


def container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


ContainerDep = Annotated[Container, Depends(container)]


@dataclass(frozen=True)
class Principal:
    actor: Actor
    session_id: UUID

    @property
    def id(self) -> UUID:
        return self.actor.id

    @property
    def role(self) -> Role:
        return self.actor.role


def principal(
    c: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("Authentication credentials were not provided")
    claims = c.tokens.decode_access(credentials.credentials)
    if not c.sessions.is_active(claims.session_id):
        raise Unauthenticated("The session has ended", code="TOKEN_REVOKED")
    try:
        role = Role(claims.role)
    except ValueError:
        raise Unauthenticated("Token is invalid", code="TOKEN_INVALID") from None
    return Principal(Actor(claims.account_id, role), claims.session_id)


PrincipalDep = Annotated[Principal, Depends(principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    allowed = frozenset(roles)

    def check(p: PrincipalDep) -> Principal:
        if p.role not in allowed:
            raise Forbidden("You do not have permission to do this", code="PERMISSION_DENIED")
        return p

    return check


def read_position(
    x_position: Annotated[int | None, Header(ge=0, description=(
        "Wait until the read model includes this log position (from a command's X-Position)"
    ))] = None,
) -> int | None:
    return x_position
