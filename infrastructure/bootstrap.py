"""The composition root: builds every adapter and hands them to the application."""

from __future__ import annotations

import logging
import os
import secrets
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import psycopg
from cryptography.fernet import Fernet
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection, ProjectionRunner
from eventsourcing.utils import Environment
from psycopg_pool import ConnectionPool
from pydantic import SecretStr
from redis import Redis

from application.accounts import AccountCommands
from application.audit import AuditQueries
from application.auth import AuthCommands, LoginLimits
from application.authorization import PaidAccess
from application.curriculum import CurriculumCommands
from application.eventstore import EventStore
from application.github import GitHubCommands
from application.payments import PaymentCommands
from application.ports import ChatNotifier, EngineUnavailable, Mailer, QuizGenerator
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
from application.workspaces import TrackImage, WorkspaceCommands, WorkspacePolicy
from infrastructure import (
    authstore,
    github,
    idempotency,
    messaging,
    migrations,
    vault,
)
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
    eventsourcing_env,
    tune_pools,
)
from infrastructure.question_bank import QuestionBankGenerator
from infrastructure.ratelimit import RedisRateLimiter
from infrastructure.settings import MissingSecrets, Settings
from infrastructure.stripe_gateway import StripeGateway
from infrastructure.webhooks import WebhookInbox
from interfaces.analytics import EventStream, Pseudonymiser
from projections.base import POSITIONS_CHANNEL, ReadModelProjection
from projections.catalog import CatalogProjection, CatalogView
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
from projections.runner import ProjectionsRunner
from projections.submissions import SubmissionsProjection, SubmissionsView
from projections.users import UsersProjection, UsersView
from projections.workspaces import WorkspacesProjection, WorkspacesView

log = logging.getLogger("apranova")

SCHEMA_LOCK = 0x41505241  # an arbitrary constant shared by every ApraNova process
PROJECTIONS: tuple[type[ReadModelProjection], ...] = (
    UsersProjection, CatalogProjection, ProgressProjection, SubmissionsProjection,
    QuizzesProjection, StudentQuizzesProjection, AttemptsProjection, PaymentsProjection,
    WorkspacesProjection,
)


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def _secret(configured: SecretStr | None, data_dir: Path, name: str) -> str:
    if configured is not None:
        return configured.get_secret_value()
    # Not configured: a random secret kept in the data directory, readable by us only.
    path = data_dir / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


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


def _fernet_key(settings: Settings) -> bytes:
    if settings.credentials_key is not None:
        return settings.credentials_key.get_secret_value().encode()
    path = settings.data_dir / "credentials-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(Fernet.generate_key())
    return path.read_bytes().strip()


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


class Supervised:
    """Runs a component in a thread and restarts it (with a growing pause) after an error."""

    def __init__(self, name: str, run: Callable[[threading.Event], None]) -> None:
        self.name = name
        self._run = run
        self._stop = threading.Event()
        self._healthy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Supervised:
        self._thread.start()
        return self

    @property
    def healthy(self) -> bool:
        return self._thread.is_alive() and self._healthy

    def _loop(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            self._healthy = True
            try:
                self._run(self._stop)
                pause = 0.5
            except Exception:
                self._healthy = False
                log.exception("%s stopped with an error; restarting", self.name)
                self._stop.wait(pause)
                pause = min(pause * 2, 10)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _run_projection_runner(make: Callable[[], ProjectionRunner[Any, Any]]
                           ) -> Callable[[threading.Event], None]:
    """Adapt a library ProjectionRunner to Supervised: run until stopped, raise its errors."""
    def run(stop: threading.Event) -> None:
        with make() as runner:
            while not stop.is_set():
                runner.run_forever(timeout=0.5)
                if runner.is_interrupted.is_set() and not stop.is_set():
                    raise RuntimeError("the runner stopped")

    return run


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
    stream: EventStream
    policies: list[Policy]
    pending: messaging.Pending
    broker: Any
    dispatcher: messaging.Dispatcher
    _handles: tuple[Any, ...] = ()
    _background: list[Any] = field(default_factory=list)

    # -- background components ---------------------------------------------------------------

    @property
    def named_views(self) -> dict[str, Any]:
        """Every read model by its name, in the order the projector feeds them."""
        return {p.name: self.views[p] for p in PROJECTIONS}

    @property
    def _runner_env(self) -> dict[str, str]:
        # Tables exist already (build() made them under a lock); runners only read and apply.
        # No standing connections: a runner holds what it uses, and idle ones are closed.
        return {**self.env, "POSTGRES_POOL_SIZE": "0", "POSTGRES_MAX_OVERFLOW": "3",
                "CREATE_TABLE": "n"}

    def start_projections(self) -> None:
        runner = ProjectionsRunner(self.store, [p(view=self.views[p]) for p in PROJECTIONS])
        self._background.append(Supervised("projections", runner.run).start())

    def start_relay(self) -> None:
        relay = messaging.relay_class(self.policies, self.dispatcher, self.pending)
        runner_env = self._runner_env
        self._background.append(Supervised("relay", _run_projection_runner(
            lambda: ProjectionRunner(application_class=messaging.RelayStore,
                                     projection_class=relay,
                                     view_class=PostgresTrackingRecorder, env=runner_env))
        ).start())
        every = min(10.0, self.settings.redeliver_after_seconds / 4)

        def redeliver(stop: threading.Event) -> None:
            while not stop.wait(every):
                messaging.redeliver(self.pending, self.dispatcher)

        self._background.append(Supervised("redelivery", redeliver).start())

    def start_worker(self) -> None:
        self._background.append(messaging.start_worker(
            self.broker, self.settings.worker_threads, self.settings.worker_prefetch))
        self.start_workspace_supervisor()

    def healthy(self) -> bool:
        """Whether every background component this process started is running."""
        for component in self._background:
            if isinstance(component, Supervised) and not component.healthy:
                return False
            if isinstance(component, dramatiq.Worker) and not any(
                    c.is_alive() for c in component.consumers.values()):
                return False
        return True

    def start_workspace_supervisor(self) -> None:
        """Every few seconds: stop idle or too-old workspaces, and reconcile with the engine."""
        every = self.settings.workspace_supervise_every_seconds

        def supervise(stop: threading.Event) -> None:
            pause = every
            while not stop.wait(pause):
                ids = self.workspace_views.ids()
                if not ids:
                    continue
                self.workspaces.cull(ids)
                try:
                    self.workspaces.reconcile(ids)
                except EngineUnavailable as error:
                    # Said once, not as a traceback every round; asked again less often.
                    if pause == every:
                        log.warning("workspace engine unavailable (%s); checking again "
                                    "with growing pauses", error)
                    pause = min(pause * 2, 600.0)
                    continue
                if pause != every:
                    log.info("workspace engine available again")
                pause = every

        self._background.append(Supervised("workspace-supervisor", supervise).start())

    def start_all(self) -> None:
        self.start_projections()
        self.start_relay()
        self.start_worker()

    def start_session_listener(self) -> Supervised:
        """Hear revocations announced by other API processes (see RememberedSessions)."""
        channel = _revocations(self.settings)

        def run(stop: threading.Event) -> None:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)

            def subscribe() -> Iterator[str]:
                pubsub.subscribe(channel)  # now, before listen() forgets what it knew

                def messages() -> Iterator[str]:
                    while not stop.is_set():
                        message = pubsub.get_message(timeout=1.0)
                        if message is not None:
                            yield bytes(message["data"]).decode()

                return messages()

            try:
                self.sessions.listen(subscribe)
            finally:
                pubsub.close()

        listener = Supervised("session-revocations", run).start()
        self._background.append(listener)
        return listener

    def start_position_listener(self) -> Supervised:
        """Hear the read models' positions as the projector commits them, so that
        read-your-writes waits in this process need not poll (see PositionBoard)."""
        board = next(iter(self.views.values())).board

        def run(stop: threading.Event) -> None:
            log_channel = self.store.recorder.channel_name  # type: ignore[attr-defined]
            with psycopg.connect(str(self.settings.database_url), autocommit=True) as conn:
                conn.execute(f"LISTEN {POSITIONS_CHANNEL}")
                conn.execute(f'LISTEN "{log_channel}"')  # each append; wakes live tails
                board.listening = True
                try:
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if note.channel == log_channel:
                                board.log_grew()
                            else:
                                board.announce_payload(note.payload)
                finally:
                    board.listening = False

        listener = Supervised("read-model-positions", run).start()
        self._background.append(listener)
        return listener

    def close(self) -> None:
        for component in reversed(self._background):
            component.stop()
        self._background.clear()
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


def _revocations(settings: Settings) -> str:
    """The Redis channel on which API processes tell each other of revoked sessions."""
    return f"{settings.redis_namespace}:sessions-revoked"


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


def build(settings: Settings | None = None) -> Container:
    settings = settings or Settings()
    if missing := settings.missing_secrets():
        raise MissingSecrets(missing)
    database_url, redis_url, handles = settings.database_url, settings.redis_url, ()
    if database_url is None or redis_url is None:
        embedded_db, embedded_redis, handles = start_embedded(
            settings.data_dir, need_postgres=database_url is None, need_redis=redis_url is None)
        database_url = database_url or embedded_db
        redis_url = redis_url or embedded_redis
        # Recorded, so that processes started from this one find the same services.
        settings = settings.model_copy(update={"database_url": database_url,
                                               "redis_url": redis_url})
    assert database_url is not None and redis_url is not None

    env = eventsourcing_env(database_url, settings.pool_size)
    pool = ConnectionPool(database_url, min_size=1, max_size=settings.pool_size,
                          name="apranova-auth", kwargs={"autocommit": True}, open=False,
                          timeout=2)
    tune_pools(pool)
    pool.open()
    with pool.connection() as lock_conn:
        # Every process creates what it needs at start; one at a time, since concurrent
        # CREATE OR REPLACE of the same function fails ("tuple concurrently updated").
        lock_conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            # Tables are made after the pools are tuned: tuning must precede their opening.
            store = EventStore(env={**env, "CREATE_TABLE": "n"})
            tune_pools(store.recorder.datastore.pool)  # type: ignore[attr-defined]
            store.recorder.create_table()  # type: ignore[attr-defined]
            views = _views(env)
            for view in views.values():
                view.request_wait_seconds = settings.read_wait_seconds
            _view(env, messaging.Relay).datastore.close()
            migrations.upgrade(database_url)  # the tables no replay can rebuild
            files = LocalFileStore(settings.data_dir / "files")
            access = PaidAccess(store, settings.requires_payment())
            curriculum = CurriculumCommands(store, files, settings.max_upload_bytes, access)
            _load_curriculum(curriculum, settings.curriculum_file)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

    hasher = Argon2Hasher()
    credentials = authstore.PostgresCredentials(pool)
    redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
    sessions = authstore.RememberedSessions(
        authstore.PostgresSessions(pool), settings.session_check_seconds,
        announce=lambda message: redis.publish(_revocations(settings), message))
    one_time = authstore.PostgresOneTimeTokens(pool)
    tokens = JwtTokens(_secret(settings.jwt_secret, settings.data_dir, "jwt-secret"),
                       settings.jwt_issuer, settings.jwt_audience,
                       settings.access_ttl_seconds, settings.refresh_ttl_seconds)
    limits = LoginLimits(settings.login_max_per_account, settings.login_account_window_seconds,
                         settings.login_max_per_ip, settings.login_ip_window_seconds)

    accounts = AccountCommands(store, credentials, hasher, sessions, settings.trainer_capacity)
    auth = AuthCommands(store, credentials, hasher, sessions, tokens, one_time,
                        RedisRateLimiter(redis, settings.redis_namespace), SystemClock(), limits)
    mailer = _mailer(settings)
    chat: ChatNotifier = (SlackWebhook(settings.slack_webhook_url)
                          if settings.slack_webhook_url else LogNotifier())
    public_url = settings.resolved_public_url()
    quizzes = QuizCommands(store, SystemClock(), LogAttemptIndex(store))
    gateway = (StripeGateway(settings.stripe_secret_key.get_secret_value(),
                             settings.stripe_api_base)
               if settings.stripe_secret_key is not None else None)
    payments = PaymentCommands(store, gateway, settings.track_prices, settings.currency)
    secrets_vault = vault.EncryptedVault(pool, _fernet_key(settings))
    code_host = (github.GitHubClient(settings.github_client_id,
                                     settings.github_client_secret.get_secret_value(),
                                     settings.github_api_base, settings.github_oauth_base)
                 if settings.github_client_id and settings.github_client_secret else None)
    workspaces = WorkspaceCommands(store, _runtime(settings), secrets_vault, SystemClock(),
                                   _workspace_policy(settings), access)
    github_commands = GitHubCommands(store, code_host, secrets_vault, one_time, tokens,
                                     settings.github_client_id, settings.github_oauth_base,
                                     f"{public_url}/api/users/github/callback/")
    policies = [*MailPolicies(store, mailer, one_time, public_url).policies(),
                *AuthPolicies(auth).policies(),
                *SubmissionPolicies(store, mailer, chat, public_url).policies(),
                *QuizPolicies(quizzes, _generator(settings)).policies(),
                *PaymentPolicies(payments, store, chat).policies(),
                *GitHubPolicies(github_commands).policies(),
                *WorkspacePolicies(workspaces).policies()]

    broker = messaging.make_broker(Redis.from_url(redis_url), settings.redis_namespace)
    pending = messaging.Pending(pool, settings.redeliver_after_seconds)
    runner = messaging.PolicyRunner(store, pending, policies)
    dispatcher = messaging.Dispatcher(broker, policies, lambda: runner)

    return Container(
        settings=settings, env=env, store=store, pool=pool, redis=redis, tokens=tokens,
        sessions=sessions, accounts=accounts, auth=auth, curriculum=curriculum, files=files,
        users=views[UsersProjection], catalog=views[CatalogProjection],
        progress=views[ProgressProjection], submissions=views[SubmissionsProjection],
        quizzes=quizzes, quiz_views=views[QuizzesProjection],
        student_quizzes=views[StudentQuizzesProjection], attempts=views[AttemptsProjection],
        payments=payments, payment_views=views[PaymentsProjection], github=github_commands,
        workspaces=workspaces, workspace_views=views[WorkspacesProjection],
        webhooks=WebhookInbox(pool), idempotency=idempotency.IdempotencyRecords(pool),
        views=views, audit=AuditQueries(store),
        stream=EventStream(store, Pseudonymiser(_secret(
            settings.pseudonym_key, settings.data_dir, "pseudonym-key").encode())),
        policies=policies, pending=pending, broker=broker, dispatcher=dispatcher, _handles=handles,
    )
