"""Request-scoped dependencies: the container, the authenticated principal, role guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from application.accounts import Actor
from application.auth import Unauthenticated
from application.authorization import require_may_change
from domain.errors import Forbidden
from domain.roles import Role
from infrastructure.bootstrap import Container

bearer = HTTPBearer(auto_error=False, description="JWT access token")


# Dependencies that don't block are `async def`: FastAPI runs a plain `def` dependency
# in the thread pool, and each hop there cost more than the work (measured with
# bench/endpoints.py).


async def container(request: Request) -> Container:
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


# Commands a read-only role may still give: about its own session only.
OWN_SESSION_COMMANDS = frozenset({("POST", "/api/auth/logout/")})
READS = frozenset({"GET", "HEAD", "OPTIONS"})


async def principal(
    request: Request, c: ContainerDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("Authentication credentials were not provided")
    claims = c.tokens.decode_access(credentials.credentials)
    # A session seen active moments ago is answered from memory, in the event loop; only
    # a check that needs the database goes to the thread pool.
    if not (c.sessions.remembered(claims.session_id, claims.account_id) or await run_in_threadpool(
            c.sessions.is_active, claims.session_id, claims.account_id)):
        raise Unauthenticated("The session has ended", code="TOKEN_REVOKED")
    try:
        role = Role(claims.role)
    except ValueError:
        raise Unauthenticated("Token is invalid", code="TOKEN_INVALID") from None
    actor = Actor(claims.account_id, role)
    request.state.principal_id = str(claims.account_id)  # for the access log line
    route = request.scope.get("route")
    if request.method not in READS and (
            request.method, getattr(route, "path", "")) not in OWN_SESSION_COMMANDS:
        require_may_change(actor)
    return Principal(actor, claims.session_id)


PrincipalDep = Annotated[Principal, Depends(principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def check(p: PrincipalDep) -> Principal:
        if p.role not in allowed:
            raise Forbidden("You do not have permission to do this", code="PERMISSION_DENIED")
        return p

    return check


async def read_position(
    x_position: Annotated[str | None, Header(
        pattern=r"^[0-9]{1,18}$", examples=["42"], description=(
            "Wait until the read model includes this log position (a non-negative "
            "integer, from a command's X-Position)"))] = None,
) -> int | None:
    return int(x_position) if x_position is not None else None
