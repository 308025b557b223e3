"""Shared fixtures: a fresh database on the real PostgreSQL, real Redis, a real SMTP server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from aiosmtpd.controller import Controller
from werkzeug import Request, Response

from domain.roles import Role
from infrastructure.background import Background
from infrastructure.bootstrap import Adapters, Container, build
from infrastructure.embedded import start_embedded
from infrastructure.passwords import Argon2Hasher
from infrastructure.settings import Settings
from interfaces.http.app import create_app, server_options
from tests.local_http import reply, serve

ADMIN_URL = os.environ.get("APRANOVA_TEST_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("APRANOVA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def pytest_configure(config: pytest.Config) -> None:
    """Use the machine's PostgreSQL and Redis; where there are none, the embedded ones."""
    global ADMIN_URL, REDIS_URL
    if _controls_workers(config):
        return  # the test processes it starts find their own services
    need_pg = "APRANOVA_TEST_ADMIN_URL" not in os.environ and not _reachable("127.0.0.1", 5432)
    need_redis = ("APRANOVA_TEST_REDIS_URL" not in os.environ
                  and not _reachable("127.0.0.1", 6379))
    if need_pg or need_redis:
        data = (Path(config.rootpath) / ".apranova" / "test-services"
                / os.environ.get("PYTEST_XDIST_WORKER", "main"))
        pg, redis, handles = start_embedded(data, need_pg, need_redis)
        config.stash[_EMBEDDED] = handles
        ADMIN_URL = pg or ADMIN_URL
        REDIS_URL = redis or REDIS_URL
    if os.environ.get("APRANOVA_RECORD_EVENT_FIXTURES"):
        from tests.events.fixtures import record_while_testing

        record_while_testing()


_EMBEDDED = pytest.StashKey[tuple[Any, ...]]()


def _controls_workers(config: pytest.Config) -> bool:
    """The pytest-xdist process that hands tests to workers and runs none itself."""
    return not hasattr(config, "workerinput") and bool(getattr(config.option, "numprocesses", 0))


@pytest.hookimpl(optionalhook=True)  # known only with pytest-xdist
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one test process per core, and per 100 connections the PostgreSQL at
    hand allows (a process holds up to about 50 at once: its servers and the e2e tests'
    subprocesses). An embedded PostgreSQL is each process's own."""
    cores = os.cpu_count() or 1
    if "APRANOVA_TEST_ADMIN_URL" not in os.environ and not _reachable("127.0.0.1", 5432):
        return cores
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=5) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
    except psycopg.Error:
        return 1
    return max(1, min(cores, int(row[0]) // 100 if row else 1))


# Modules whose tests are spread over the parallel test processes one by one rather than
# kept together: the contract run, one long test per caller, on one session-wide server.
SPREAD_BY_TEST = ("tests/integration/test_api_contract.py",)


@pytest.hookimpl(optionalhook=True)  # known only with pytest-xdist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """How the suite splits over parallel test processes (`-n`): a module's tests stay in
    one process, so a module-scoped server, OpenID provider or Docker engine starts once
    and its tests see it as they would in a serial run."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if module in SPREAD_BY_TEST else module

    return ByModule(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In parallel runs, modules marked `long` come first (the processes take modules in
    collection order, `--no-loadscope-reorder`), so the processes finish together instead
    of one running a long module last. A serial run keeps the unit tests first."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("long") is None)


JWT_SECRET = "test-secret-" + "x" * 40
CREDENTIALS_KEY = "uV8xF1m3oVb0l6yQ1w7kS3n9pZ2cR5tE8aH4jL0dG6M="  # a Fernet key, for tests only
PSEUDONYM_KEY = "test-pseudonyms-" + "y" * 40
# What every process of a deployment is given (and refuses to start without).
SECRETS_ENV = {"APRANOVA_JWT_SECRET": JWT_SECRET, "APRANOVA_CREDENTIALS_KEY": CREDENTIALS_KEY,
               "APRANOVA_PSEUDONYM_KEY": PSEUDONYM_KEY}
PASSWORD = "correct horse battery staple"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def new_database() -> Iterator[str]:
    """A database of its own on the machine's PostgreSQL, dropped afterwards."""
    name = f"apranova_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    base["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo(**base)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with new_database() as url:
        yield url


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, subject: str, timeout: float = 15.0) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.to(address):
                if subject in (message["Subject"] or ""):
                    return message
            time.sleep(0.05)
        raise AssertionError(f"no email '{subject}' to {address} within {timeout}s")


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.mailbox.lock:
            self.mailbox.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(_Handler(mailbox), hostname="127.0.0.1", port=port)
    controller.start()
    yield mailbox, port
    controller.stop()


@pytest.fixture(scope="session")
def mailbox(smtp: tuple[Mailbox, int]) -> Mailbox:
    return smtp[0]


@dataclass
class Receiver:
    """A local HTTP endpoint standing in for a Slack incoming webhook."""

    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, fragment: str, timeout: float = 15.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for post in list(self.posts):
                if fragment in post.get("text", ""):
                    return post
            time.sleep(0.05)
        raise AssertionError(f"no chat message containing {fragment!r}")


@pytest.fixture(scope="session")
def slack() -> Iterator[Receiver]:
    receiver = Receiver(url="")

    def answer(request: Request) -> Response:
        receiver.posts.append(json.loads(request.get_data()))
        return reply(200, "ok")

    with serve("POST", answer) as url:
        receiver.url = f"{url}/services/T000/B000/XXXX"
        yield receiver


def make_settings(database_url: str, smtp_port: int, tmp: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "redis_url": REDIS_URL, "jwt_secret": JWT_SECRET,
        "credentials_key": CREDENTIALS_KEY, "pseudonym_key": PSEUDONYM_KEY,
        "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "data_dir": tmp,
        "redis_namespace": f"apranova-test-{uuid.uuid4().hex[:8]}",
        "login_max_per_ip": 100_000, "login_max_per_account": 1_000, "pool_size": 12,
        # Administrators sign in with a password alone here; tests/integration/
        # test_two_factor.py runs with the default (administrators must enrol).
        "mfa_required_roles": [],
    }
    values.update(overrides)
    return Settings(**values)


def wait_until_ready(url: str, log: Path, process: subprocess.Popen[bytes] | None = None,
                     timeout: float = 60) -> None:
    """Wait for a served process's /readyz; fail with its log if it dies or never gets there."""
    deadline = time.monotonic() + timeout
    while True:
        assert process is None or process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def settings_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Point the command line (which reads APRANOVA_* variables) at these settings."""
    for key, value in settings.model_dump().items():
        if value is not None and not isinstance(value, dict):
            raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            monkeypatch.setenv(f"APRANOVA_{key.upper()}", str(raw))


@dataclass
class Server:
    container: Container
    url: str
    background: Background

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


# argon2id as in production, at its smallest cost: a test server's sign-ups and logins
# (about 1,700 in a run) would otherwise take 40 s of CPU. The e2e tests' processes and the
# containers tests build themselves hash at OWASP's parameters.
QUICK_HASHING = Adapters(hasher=Argon2Hasher(time_cost=1, memory_kib=1024))


@contextmanager
def running_server(settings: Settings, background: bool = True, port: int | None = None
                   ) -> Iterator[Server]:
    """The real app under uvicorn on a (free) loopback port, with its background components."""
    container = build(settings, QUICK_HASHING)
    followers = Background(container)
    if background:
        followers.start_all()
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port,
                                           log_level="warning", **server_options(settings)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield Server(container, f"http://127.0.0.1:{port}", followers)
    finally:
        followers.signal()  # they wind down while the server does
        server.should_exit = True
        thread.join(timeout=10)
        followers.stop()
        container.close()


@pytest.fixture(scope="session")
def server(
    database_url: str, smtp: tuple[Mailbox, int], slack: Receiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    settings = make_settings(database_url, smtp[1], tmp_path_factory.mktemp("data"),
                             slack_webhook_url=slack.url)
    with running_server(settings) as s:
        yield s
        # Whatever the session's tests had accepted, every reader got past it.
        head = s.container.store.recorder.max_notification_id() or 0
        for view in s.container.views.values():
            view.wait_for(head, 30)


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


@dataclass
class User:
    id: str
    email: str
    access: str
    refresh: str
    role: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access}"}


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> User:
    r = client.post("/api/auth/login/", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    return User(body["user"]["id"], email, body["access"], body["refresh"], body["user"]["role"])


def register_student(client: httpx.Client, track: str = "DP", name: str = "Student") -> User:
    email = unique_email("student")
    r = client.post("/api/auth/register/", json={
        "email": email, "password": PASSWORD, "name": name, "track": track})
    assert r.status_code == 201, r.text
    return login(client, email)


def make_staff(server: Server, client: httpx.Client, role: Role) -> User:
    """Administrators come from the operator's command path; others from an admin's request."""
    email = unique_email(role.value)
    if role in (Role.ADMIN, Role.SUPERADMIN):
        server.container.accounts.create_administrator(email, role.value.title(), PASSWORD, role)
    else:
        root = make_staff(server, client, Role.SUPERADMIN)
        r = client.post("/api/users/", headers=root.headers, json={
            "email": email, "password": PASSWORD, "name": role.value.title(),
            "role": role.value})
        assert r.status_code == 201, r.text
    return login(client, email)


@pytest.fixture
def student(client: httpx.Client) -> User:
    return register_student(client)


@pytest.fixture
def admin(server: Server, client: httpx.Client) -> User:
    return make_staff(server, client, Role.ADMIN)


@pytest.fixture
def superadmin(server: Server, client: httpx.Client) -> User:
    return make_staff(server, client, Role.SUPERADMIN)


@pytest.fixture
def trainer(server: Server, client: httpx.Client) -> User:
    return make_staff(server, client, Role.TRAINER)
