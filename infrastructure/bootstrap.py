"""The composition root: builds every adapter and hands them to the application."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import Environment
from psycopg_pool import ConnectionPool
from redis import Redis

from application.accounts import AccountCommands
from application.audit import AuditQueries
from application.auth import AuthCommands, LoginLimits
from application.authorization import PaidAccess
from application.curriculum import CurriculumCommands
from application.eventstore import EventStore
from application.github import GitHubCommands
from application.payments import PaymentCommands
from application.ports import (
    ChatNotifier,
    Clock,
    CodeHost,
    IdentityProvider,
    Mailer,
    PasswordHasher,
    PaymentGateway,
    QuizGenerator,
    WorkspaceRuntime,
)
from application.privacy import PrivacyCommands
from application.processes import (
    AuthPolicies,
    GitHubPolicies,
    MailPolicies,
    PaymentPolicies,
    Policy,
    QuizPolicies,
    SubmissionPolicies,
    WorkspacePolicies,
)
from application.quizzes import QuizCommands
from application.signin import ProviderSignIn
from application.twofactor import TwoFactorCommands
from application.workspaces import TrackImage, WorkspaceCommands, WorkspacePolicy
from infrastructure import (
    authstore,
    github,
    idempotency,
    keys,
    messaging,
    migrations,
    oauth,
    vault,
)
from infrastructure.background import revocations_channel
from infrastructure.chat import LogNotifier, SlackWebhook
from infrastructure.docker_runtime import DockerRuntime, Hardening
from infrastructure.embedded import EmbeddedRedis, start_embedded
from infrastructure.files import LocalFileStore
from infrastructure.gemini import GeminiGenerator
from infrastructure.jwt_tokens import JwtTokens
from infrastructure.mail import ConsoleMailer, SmtpMailer
from infrastructure.passwords import Argon2Hasher
from infrastructure.persistence import (
    LogAttemptIndex,
    LogEvents,
    eventsourcing_env,
    tune_pools,
)
from infrastructure.privacy import (
    PostgresKeyTable,
    PostgresPersonalRows,
    PostgresPersonalStores,
    SubjectKeys,
    key_encryption_key,
)
from infrastructure.question_bank import QuestionBankGenerator
from infrastructure.ratelimit import RedisRateLimiter
from infrastructure.settings import MissingSecrets, Settings
from infrastructure.stripe_gateway import StripeGateway
from infrastructure.totp import PyOtpAuthenticator
from infrastructure.webhooks import WebhookInbox
from projections.analytics import EventStream, Pseudonymiser
from projections.answers import AnswerCache
from projections.base import ReadModelProjection
from projections.catalog import CatalogProjection, CatalogView
from projections.models import PROJECTIONS
from projections.payments import PaymentsProjection, PaymentsView
from projections.progress import ProgressProjection, ProgressView
from projections.quizzes import (
    AttemptsProjection,
    AttemptsView,
    QuizzesProjection,
    QuizzesView,
    StudentQuizzesProjection,
    StudentQuizzesView,
)
from projections.submissions import SubmissionsProjection, SubmissionsView
from projections.users import UsersProjection, UsersView
from projections.workspaces import WorkspacesProjection, WorkspacesView

log = logging.getLogger("apranova")

SCHEMA_LOCK = 0x41505241  # an arbitrary constant shared by every ApraNova process


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _runtime(settings: Settings) -> DockerRuntime:
    return DockerRuntime(settings.docker_host, settings.workspace_network_mode, Hardening(
        user=settings.workspace_user, memory=settings.workspace_memory,
        nano_cpus=int(settings.workspace_cpus * 1e9), pids=settings.workspace_pids,
        read_only=settings.workspace_read_only), settings.workspace_command)


def _workspace_policy(settings: Settings) -> WorkspacePolicy:
    return WorkspacePolicy(
        images={"DP": TrackImage(settings.workspace_image_dp, settings.workspace_port_dp),
                "FSD": TrackImage(settings.workspace_image_fsd, settings.workspace_port_fsd)},
        start_timeout=settings.workspace_start_timeout_seconds,
        idle_timeout=timedelta(seconds=settings.workspace_idle_timeout_seconds),
        max_age=timedelta(seconds=settings.workspace_max_age_seconds))


def _mailer(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(
            settings.smtp_host, settings.smtp_port, settings.mail_from, settings.smtp_username,
            settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            settings.smtp_starttls,
        )
    return ConsoleMailer()


def _generator(settings: Settings) -> QuizGenerator:
    if settings.gemini_api_key is not None:
        return GeminiGenerator(settings.gemini_api_key.get_secret_value(), settings.gemini_model,
                               settings.gemini_base_url)
    return QuestionBankGenerator(settings.question_bank_file)


@dataclass
class Container:
    settings: Settings
    env: dict[str, str]
    store: EventStore
    pool: ConnectionPool
    redis: Redis
    tokens: JwtTokens
    sessions: authstore.RememberedSessions
    accounts: AccountCommands
    auth: AuthCommands
    sign_in: ProviderSignIn
    two_factor: TwoFactorCommands
    curriculum: CurriculumCommands
    files: LocalFileStore
    users: UsersView
    catalog: CatalogView
    progress: ProgressView
    submissions: SubmissionsView
    quizzes: QuizCommands
    quiz_views: QuizzesView
    student_quizzes: StudentQuizzesView
    attempts: AttemptsView
    payments: PaymentCommands
    payment_views: PaymentsView
    github: GitHubCommands
    workspaces: WorkspaceCommands
    workspace_views: WorkspacesView
    webhooks: WebhookInbox
    idempotency: idempotency.IdempotencyRecords
    views: dict[type[ReadModelProjection], Any]
    audit: AuditQueries
    privacy: PrivacyCommands
    cipher: SubjectKeys
    answers: AnswerCache
    stream: EventStream
    policies: list[Policy]
    pending: messaging.Pending
    broker: Any
    dispatcher: messaging.Dispatcher
    _handles: tuple[Any, ...] = ()

    @property
    def named_views(self) -> dict[str, Any]:
        """Every read model by its name, in the order the projector feeds them."""
        return {p.name: self.views[p] for p in PROJECTIONS}

    def close(self) -> None:
        """Close what build() opened; stop the process's Background first."""
        self.store.close()
        # The views share one datastore (see _views).
        self.users.datastore.close()
        self.pool.close()
        self.redis.close()
        # The broker has a Redis client of its own. An embedded Redis shuts down at exit
        # only when no client is still connected, so it must be closed too (seen: each
        # stopped `serve` left its redis-server running).
        self.broker.client.close()
        for handle in self._handles:
            if isinstance(handle, EmbeddedRedis):
                handle.close()


def _view(env: dict[str, str], projection: type[Projection[Any]]) -> Any:
    factory = InfrastructureFactory[Any].construct(env=Environment(projection.name, env))
    view_class = getattr(projection, "view_class", PostgresTrackingRecorder)
    return factory.tracking_recorder(view_class)


def _views(env: dict[str, str]) -> dict[type[ReadModelProjection], Any]:
    """Every read model of this process, sharing one connection pool for their queries."""
    first, *rest = PROJECTIONS
    views = {first: _view({**env, "CREATE_TABLE": "n"}, first)}
    datastore = views[first].datastore
    tune_pools(datastore.pool)
    # Read models are derived from the log: if the database crashes, the last projector
    # commits may be lost with their tracking rows (they commit together), and the
    # projector applies those events again. So their commits need not wait for the disk.
    kwargs = datastore.pool.kwargs
    assert isinstance(kwargs, dict)
    kwargs["options"] = "-c synchronous_commit=off"
    views[first].create_table()
    for projection in rest:
        view = projection.view_class(datastore=datastore,
                                     tracking_table_name=f"{projection.name}_tracking")
        view.create_table()
        view.board = views[first].board  # one board per database
        views[projection] = view
    return views


def _load_curriculum(commands: CurriculumCommands, path: Path) -> None:
    """Record the data file's content as a version, unless it is the current one already."""
    if not path.exists():
        log.warning("no curriculum file at %s", path)
        return
    with path.open("rb") as f:
        data = tomllib.load(f)
    if commands.publish(data, None, note=f"loaded from {path.name}"):
        log.info("published a new curriculum version from %s", path)


@dataclass
class Adapters:
    """The ports' adapters a container is built with. Each left out is made from the
    settings (production defaults); tests and tools pass their own."""

    clock: Clock | None = None
    mailer: Mailer | None = None
    chat: ChatNotifier | None = None
    generator: QuizGenerator | None = None
    runtime: WorkspaceRuntime | None = None
    gateway: PaymentGateway | None = None
    code_host: CodeHost | None = None
    identity_providers: Mapping[str, IdentityProvider] | None = None
    hasher: PasswordHasher | None = None


def _code_host(settings: Settings) -> github.GitHubClient | None:
    if not (settings.github_client_id and settings.github_client_secret):
        return None
    return github.GitHubClient(settings.github_client_id,
                               settings.github_client_secret.get_secret_value(),
                               settings.github_api_base, settings.github_oauth_base)


def _identity_providers(settings: Settings) -> dict[str, IdentityProvider]:
    """The providers people may sign in with: each one whose client is configured."""
    providers: dict[str, IdentityProvider] = {}
    if settings.google_client_id and settings.google_client_secret:
        providers["google"] = oauth.OpenIDConnect(
            "google", settings.google_issuer, settings.google_client_id,
            settings.google_client_secret.get_secret_value())
    if (host := _code_host(settings)) is not None:
        providers["github"] = host
    return providers


def _gateway(settings: Settings) -> PaymentGateway | None:
    if settings.stripe_secret_key is None:
        return None
    return StripeGateway(settings.stripe_secret_key.get_secret_value(), settings.stripe_api_base)


def _services(settings: Settings) -> tuple[Settings, tuple[Any, ...]]:
    """Settings naming the database and Redis, starting embedded ones where none is set."""
    if settings.database_url is not None and settings.redis_url is not None:
        return settings, ()
    embedded_db, embedded_redis, handles = start_embedded(
        settings.data_dir, need_postgres=settings.database_url is None,
        need_redis=settings.redis_url is None)
    # Recorded, so that processes started from this one find the same services.
    return settings.model_copy(update={
        "database_url": settings.database_url or embedded_db,
        "redis_url": settings.redis_url or embedded_redis}), handles


def _prepare_storage(settings: Settings, env: dict[str, str], pool: ConnectionPool,
                     access_requires_payment: bool, cipher: SubjectKeys
                     ) -> tuple[EventStore, dict[type[ReadModelProjection], Any],
                                CurriculumCommands, LocalFileStore, PaidAccess]:
    """The log, the read models and the other tables, made if missing, and the
    curriculum file loaded: under a lock, because every process does this at start and
    concurrent CREATE OR REPLACE of the same function fails ("tuple concurrently
    updated")."""
    with pool.connection() as lock_conn:
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            # Tables are made after the pools are tuned: tuning must precede their opening.
            store = EventStore(env={**env, "CREATE_TABLE": "n"}, cipher=cipher)
            tune_pools(store.recorder.datastore.pool)  # type: ignore[attr-defined]
            store.recorder.create_table()  # type: ignore[attr-defined]
            views = _views(env)
            for view in views.values():
                view.request_wait_seconds = settings.read_wait_seconds
            _view(env, messaging.Relay).datastore.close()
            migrations.upgrade(str(settings.database_url))  # the tables no replay rebuilds
            files = LocalFileStore(settings.data_dir / "files")
            access = PaidAccess(store, access_requires_payment)
            curriculum = CurriculumCommands(store, files, settings.max_upload_bytes, access)
            _load_curriculum(curriculum, settings.curriculum_file)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
    return store, views, curriculum, files, access


def build(settings: Settings | None = None, adapters: Adapters | None = None) -> Container:
    """Wire the application: adapters (given, or made from the settings), storage,
    commands, views and policies. Nothing runs yet; see infrastructure.background."""
    settings = settings or Settings()
    if missing := settings.missing_secrets():
        raise MissingSecrets(missing)
    settings, handles = _services(settings)
    database_url, redis_url = str(settings.database_url), str(settings.redis_url)
    given = adapters or Adapters()
    clock = given.clock or SystemClock()
    mailer = given.mailer or _mailer(settings)
    chat = given.chat or (SlackWebhook(settings.slack_webhook_url)
                          if settings.slack_webhook_url else LogNotifier())
    generator = given.generator or _generator(settings)
    runtime = given.runtime or _runtime(settings)
    gateway = given.gateway or _gateway(settings)
    code_host = given.code_host or _code_host(settings)

    env = eventsourcing_env(database_url, settings.pool_size)
    pool = ConnectionPool(database_url, min_size=1, max_size=settings.pool_size,
                          name="apranova-auth", kwargs={"autocommit": True}, open=False,
                          timeout=2)
    tune_pools(pool)
    pool.open()
    credentials_key = keys.fernet_key(settings.credentials_key, settings.data_dir)
    cipher = SubjectKeys(PostgresKeyTable(pool), key_encryption_key(credentials_key))
    store, views, curriculum, files, access = _prepare_storage(
        settings, env, pool, settings.requires_payment(), cipher)

    hasher = given.hasher or Argon2Hasher()
    credentials = authstore.PostgresCredentials(pool)
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    sessions = authstore.RememberedSessions(
        authstore.PostgresSessions(pool), settings.session_check_seconds,
        announce=lambda message: redis.publish(
            revocations_channel(settings.redis_namespace), message))
    one_time = authstore.PostgresOneTimeTokens(pool)
    tokens = JwtTokens(keys.secret(settings.jwt_secret, settings.data_dir, "jwt-secret"),
                       settings.jwt_issuer, settings.jwt_audience,
                       settings.access_ttl_seconds, settings.refresh_ttl_seconds)
    limits = LoginLimits(settings.login_max_per_account, settings.login_account_window_seconds,
                         settings.login_max_per_ip, settings.login_ip_window_seconds)

    accounts = AccountCommands(store, credentials, hasher, sessions, settings.trainer_capacity)
    limiter = RedisRateLimiter(redis, settings.redis_namespace)
    auth = AuthCommands(store, credentials, hasher, sessions, tokens, one_time, limiter, clock,
                        limits, frozenset(settings.mfa_required_roles))
    public_url = settings.resolved_public_url()
    quizzes = QuizCommands(store, clock, LogAttemptIndex(store))
    payments = PaymentCommands(store, gateway, settings.track_prices, settings.currency)
    secrets_vault = vault.EncryptedVault(pool, credentials_key)
    two_factor = TwoFactorCommands(store, auth, authstore.PostgresTwoFactor(pool, secrets_vault),
                                   PyOtpAuthenticator(), limiter, clock)
    workspaces = WorkspaceCommands(store, runtime, secrets_vault, clock,
                                   _workspace_policy(settings), access)
    github_commands = GitHubCommands(store, code_host, secrets_vault, one_time, tokens,
                                     settings.github_client_id, settings.github_oauth_base,
                                     f"{public_url}/api/users/github/callback/")
    sign_in = ProviderSignIn(
        store, auth, credentials,
        given.identity_providers if given.identity_providers is not None
        else _identity_providers(settings), authstore.PostgresSignInFlows(pool),
        lambda provider: f"{public_url}/api/auth/oauth/{provider}/callback/",
        settings.sign_in_origins())
    policies = [*MailPolicies(store, mailer, one_time, public_url).policies(),
                *AuthPolicies(auth).policies(),
                *SubmissionPolicies(store, mailer, chat, public_url).policies(),
                *QuizPolicies(quizzes, generator).policies(),
                *PaymentPolicies(payments, store, chat).policies(),
                *GitHubPolicies(github_commands).policies(),
                *WorkspacePolicies(workspaces).policies()]

    pseudonyms = Pseudonymiser(keys.secret(
        settings.pseudonym_key, settings.data_dir, "pseudonym-key").encode())
    privacy = PrivacyCommands(store, accounts, auth, limiter, cipher,
                              PostgresPersonalStores(pool, files),
                              PostgresPersonalRows(pool), sessions, LogEvents(store),
                              lambda person: str(pseudonyms(person)))

    broker = messaging.make_broker(Redis.from_url(redis_url), settings.redis_namespace)
    pending = messaging.Pending(pool, settings.redeliver_after_seconds)
    runner = messaging.PolicyRunner(store, pending, policies)
    dispatcher = messaging.Dispatcher(broker, policies, lambda: runner)

    return Container(
        settings=settings, env=env, store=store, pool=pool, redis=redis, tokens=tokens,
        sessions=sessions, accounts=accounts, auth=auth, sign_in=sign_in,
        two_factor=two_factor,
        curriculum=curriculum, files=files,
        users=views[UsersProjection], catalog=views[CatalogProjection],
        progress=views[ProgressProjection], submissions=views[SubmissionsProjection],
        quizzes=quizzes, quiz_views=views[QuizzesProjection],
        student_quizzes=views[StudentQuizzesProjection], attempts=views[AttemptsProjection],
        payments=payments, payment_views=views[PaymentsProjection], github=github_commands,
        workspaces=workspaces, workspace_views=views[WorkspacesProjection],
        webhooks=WebhookInbox(pool), idempotency=idempotency.IdempotencyRecords(pool),
        views=views, audit=AuditQueries(store),
        stream=EventStream(store, pseudonyms), privacy=privacy, cipher=cipher,
        answers=AnswerCache(settings.read_cache_megabytes * 2**20),
        policies=policies, pending=pending, broker=broker, dispatcher=dispatcher, _handles=handles,
    )
