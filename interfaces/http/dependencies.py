"""Request-scoped dependencies: the services endpoints use, the authenticated principal,
role guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from redis import Redis
from starlette.concurrency import run_in_threadpool

from application.accounts import AccountCommands, Actor
from application.audit import AuditQueries
from application.auth import AuthCommands, Unauthenticated
from application.authorization import require_may_change
from application.curriculum import CurriculumCommands
from application.eventstore import EventStore
from application.github import GitHubCommands
from application.payments import PaymentCommands
from application.privacy import PrivacyCommands
from application.quizzes import QuizCommands
from application.signin import ProviderSignIn
from application.twofactor import TwoFactorCommands
from application.workspaces import WorkspaceCommands
from domain.errors import Forbidden
from domain.roles import Role
from infrastructure.bootstrap import Container
from infrastructure.files import LocalFileStore
from infrastructure.messaging import Dispatcher
from infrastructure.webhooks import WebhookInbox
from projections.analytics import EventStream
from projections.answers import AnswerCache
from projections.base import PositionBoard
from projections.catalog import CatalogView
from projections.payments import PaymentsView
from projections.progress import ProgressView
from projections.quizzes import AttemptsView, QuizzesView, StudentQuizzesView
from projections.submissions import SubmissionsView
from projections.users import UsersView
from projections.workspaces import WorkspacesView

bearer = HTTPBearer(auto_error=False, description="JWT access token")


# Dependencies that don't block are `async def`: FastAPI runs a plain `def` dependency
# in the thread pool, and each hop there cost more than the work (measured with
# bench/endpoints.py).


def _container(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


# -- commands --------------------------------------------------------------------------------

async def account_commands(request: Request) -> AccountCommands:
    return _container(request).accounts


async def auth_commands(request: Request) -> AuthCommands:
    return _container(request).auth


async def curriculum_commands(request: Request) -> CurriculumCommands:
    return _container(request).curriculum


async def quiz_commands(request: Request) -> QuizCommands:
    return _container(request).quizzes


async def payment_commands(request: Request) -> PaymentCommands:
    return _container(request).payments


async def github_commands(request: Request) -> GitHubCommands:
    return _container(request).github


async def workspace_commands(request: Request) -> WorkspaceCommands:
    return _container(request).workspaces


async def provider_sign_in(request: Request) -> ProviderSignIn:
    return _container(request).sign_in


async def two_factor_commands(request: Request) -> TwoFactorCommands:
    return _container(request).two_factor


async def privacy_commands(request: Request) -> PrivacyCommands:
    return _container(request).privacy


AccountCommandsDep = Annotated[AccountCommands, Depends(account_commands)]
AuthCommandsDep = Annotated[AuthCommands, Depends(auth_commands)]
CurriculumCommandsDep = Annotated[CurriculumCommands, Depends(curriculum_commands)]
QuizCommandsDep = Annotated[QuizCommands, Depends(quiz_commands)]
PaymentCommandsDep = Annotated[PaymentCommands, Depends(payment_commands)]
GitHubCommandsDep = Annotated[GitHubCommands, Depends(github_commands)]
WorkspaceCommandsDep = Annotated[WorkspaceCommands, Depends(workspace_commands)]
ProviderSignInDep = Annotated[ProviderSignIn, Depends(provider_sign_in)]
TwoFactorCommandsDep = Annotated[TwoFactorCommands, Depends(two_factor_commands)]
PrivacyCommandsDep = Annotated[PrivacyCommands, Depends(privacy_commands)]


# -- read models and queries -----------------------------------------------------------------

async def users_view(request: Request) -> UsersView:
    return _container(request).users


async def catalog_view(request: Request) -> CatalogView:
    return _container(request).catalog


async def progress_view(request: Request) -> ProgressView:
    return _container(request).progress


async def submissions_view(request: Request) -> SubmissionsView:
    return _container(request).submissions


async def quizzes_view(request: Request) -> QuizzesView:
    return _container(request).quiz_views


async def student_quizzes_view(request: Request) -> StudentQuizzesView:
    return _container(request).student_quizzes


async def attempts_view(request: Request) -> AttemptsView:
    return _container(request).attempts


async def payments_view(request: Request) -> PaymentsView:
    return _container(request).payment_views


async def workspaces_view(request: Request) -> WorkspacesView:
    return _container(request).workspace_views


async def audit_queries(request: Request) -> AuditQueries:
    return _container(request).audit


async def event_stream(request: Request) -> EventStream:
    return _container(request).stream


async def answer_cache(request: Request) -> AnswerCache:
    return _container(request).answers


async def position_board(request: Request) -> PositionBoard:
    """Where this process hears the positions of the log and of the read models (the
    views of one database share one board)."""
    return _container(request).users.board


UsersDep = Annotated[UsersView, Depends(users_view)]
CatalogDep = Annotated[CatalogView, Depends(catalog_view)]
ProgressDep = Annotated[ProgressView, Depends(progress_view)]
SubmissionsDep = Annotated[SubmissionsView, Depends(submissions_view)]
QuizViewsDep = Annotated[QuizzesView, Depends(quizzes_view)]
StudentQuizzesDep = Annotated[StudentQuizzesView, Depends(student_quizzes_view)]
AttemptsDep = Annotated[AttemptsView, Depends(attempts_view)]
PaymentViewsDep = Annotated[PaymentsView, Depends(payments_view)]
WorkspaceViewsDep = Annotated[WorkspacesView, Depends(workspaces_view)]
AuditDep = Annotated[AuditQueries, Depends(audit_queries)]
EventStreamDep = Annotated[EventStream, Depends(event_stream)]
PositionBoardDep = Annotated[PositionBoard, Depends(position_board)]
AnswerCacheDep = Annotated[AnswerCache, Depends(answer_cache)]


# -- other adapters --------------------------------------------------------------------------

async def file_store(request: Request) -> LocalFileStore:
    return _container(request).files


async def webhook_inbox(request: Request) -> WebhookInbox:
    return _container(request).webhooks


FileStoreDep = Annotated[LocalFileStore, Depends(file_store)]
WebhookInboxDep = Annotated[WebhookInbox, Depends(webhook_inbox)]


# -- settings --------------------------------------------------------------------------------

async def trainer_capacity(request: Request) -> int:
    return _container(request).settings.trainer_capacity


async def github_webhook_secret(request: Request) -> SecretStr | None:
    return _container(request).settings.github_webhook_secret


async def stripe_webhook_secret(request: Request) -> SecretStr | None:
    return _container(request).settings.stripe_webhook_secret


async def stripe_webhook_tolerance(request: Request) -> int:
    return _container(request).settings.stripe_webhook_tolerance_seconds


TrainerCapacityDep = Annotated[int, Depends(trainer_capacity)]
GitHubWebhookSecretDep = Annotated[SecretStr | None, Depends(github_webhook_secret)]
StripeWebhookSecretDep = Annotated[SecretStr | None, Depends(stripe_webhook_secret)]
StripeWebhookToleranceDep = Annotated[int, Depends(stripe_webhook_tolerance)]


# -- what readiness and metrics inspect ------------------------------------------------------

async def database_pool(request: Request) -> ConnectionPool:
    return _container(request).pool


async def redis_client(request: Request) -> Redis:
    return _container(request).redis


async def read_models(request: Request) -> dict[str, Any]:
    """Every read model by its name."""
    return _container(request).named_views


async def event_store(request: Request) -> EventStore:
    return _container(request).store


async def policy_dispatcher(request: Request) -> Dispatcher:
    """What enqueues the process managers' messages in Redis."""
    return _container(request).dispatcher


DatabasePoolDep = Annotated[ConnectionPool, Depends(database_pool)]
RedisDep = Annotated[Redis, Depends(redis_client)]
ReadModelsDep = Annotated[dict[str, Any], Depends(read_models)]
EventStoreDep = Annotated[EventStore, Depends(event_store)]
PolicyDispatcherDep = Annotated[Dispatcher, Depends(policy_dispatcher)]


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


# Commands a read-only role may still give: about its own session and sign-in only.
OWN_SESSION_COMMANDS = frozenset({("POST", "/api/auth/logout/"),
                                  ("POST", "/api/auth/oauth/complete/"),
                                  ("POST", "/api/auth/mfa/enrol/"),
                                  ("POST", "/api/auth/mfa/enrol/confirm/"),
                                  ("POST", "/api/auth/mfa/disable/"),
                                  ("DELETE", "/api/auth/oauth/identities/{provider}/")})
READS = frozenset({"GET", "HEAD", "OPTIONS"})
# All an account that must use two-factor sign-in may do before it has enrolled.
ENROLMENT = frozenset({("GET", "/api/auth/mfa/"), ("POST", "/api/auth/mfa/enrol/"),
                       ("POST", "/api/auth/mfa/enrol/confirm/"), ("POST", "/api/auth/logout/")})


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        raise Unauthenticated("Authentication credentials were not provided")
    c = _container(request)
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
    if claims.enrol_only and (request.method, getattr(route, "path", "")) not in ENROLMENT:
        raise Forbidden("Turn on two-factor sign-in first (/api/auth/mfa/enrol/)",
                        code="MFA_ENROLMENT_REQUIRED")
    if request.method not in READS and (
            request.method, getattr(route, "path", "")) not in OWN_SESSION_COMMANDS:
        require_may_change(actor)
    return Principal(actor, claims.session_id)


PrincipalDep = Annotated[Principal, Depends(principal)]


async def optional_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The caller if it sent a token (which must then be valid), else None."""
    return None if credentials is None else await principal(request, credentials)


OptionalPrincipalDep = Annotated[Principal | None, Depends(optional_principal)]


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
