"""A database that hangs or drops its connections costs requests a fast 503, never the
outage's length, and the API recovers by itself."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import psutil
import psycopg
import pytest

from infrastructure.embedded import start_embedded
from tests import conftest
from tests.conftest import (
    Mailbox,
    make_settings,
    new_database,
    register_student,
    running_server,
)

pytestmark = pytest.mark.long


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A PostgreSQL of this test's own, since it is paused (the machine's is shared)."""
    url, _, handles = start_embedded(tmp_path_factory.mktemp("pg"), True, False)
    assert url is not None
    [server] = handles
    yield url, server.get_pid()
    server.cleanup()


@contextmanager
def paused(postmaster: int) -> Iterator[None]:
    """Every process of the server stopped (SIGSTOP): connections stay open, nothing
    answers, as with a hung server or a network dropping packets."""
    # The postmaster first, so that it forks no backend while its children are listed.
    os.kill(postmaster, signal.SIGSTOP)
    processes = [psutil.Process(postmaster)]
    while fresh := [p for p in psutil.Process(postmaster).children(True)
                    if p not in processes]:
        for process in fresh:
            os.kill(process.pid, signal.SIGSTOP)
        processes += fresh
    try:
        yield
    finally:
        for process in processes:
            os.kill(process.pid, signal.SIGCONT)


def _timed(call: object) -> tuple[object, float]:
    began = time.monotonic()
    result = call()  # type: ignore[operator]
    return result, time.monotonic() - began


def test_a_paused_database_answers_503_fast_and_the_api_recovers(
        own_postgres: tuple[str, int], smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    url, postmaster = own_postgres
    settings = make_settings(url, smtp[1], tmp_path)
    with running_server(settings) as s, s.client() as c:
        student = register_student(c)
        assert c.get("/api/users/profile/", headers=student.headers).status_code == 200
        with paused(postmaster), ThreadPoolExecutor(12) as pool:
            # More requests in flight than the API has threads, reads and writes.
            reads = [pool.submit(_timed, lambda: c.get(
                "/api/users/profile/", headers={**student.headers, "X-Position": "999999"}))
                for _ in range(6)]
            writes = [pool.submit(_timed, lambda i=i: c.put(
                "/api/users/profile/", headers=student.headers, json={"name": f"N{i}"}))
                for i in range(6)]
            keyed = pool.submit(_timed, lambda: c.put(
                "/api/users/profile/", json={"name": "Keyed"},
                headers={**student.headers, "Idempotency-Key": "outage-1"}))
            time.sleep(0.3)
            live, took = _timed(lambda: c.get("/livez"))
            assert live.status_code == 200 and took < 1.0, took  # type: ignore[attr-defined]
            ready, took = _timed(lambda: c.get("/readyz"))
            assert ready.status_code == 503 and took < 2.0, took  # type: ignore[attr-defined]
            checks = ready.json()["error"]["details"]  # type: ignore[attr-defined]
            assert checks["postgres"].startswith("unavailable") and checks["redis"] == "ok"
            for future in [*reads, *writes, keyed]:
                response, took = future.result(timeout=30)
                assert took < 7.0, took
                assert response.status_code == 503, response.text  # type: ignore[attr-defined]
                assert response.headers["Retry-After"]  # type: ignore[attr-defined]
                body = response.json()  # type: ignore[attr-defined]
                assert body["status"] == "error"
                assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
            time.sleep(2)  # the outage goes on past the requests' deadline
        # Resumed: everything answers again without a restart.
        deadline = time.monotonic() + 10
        while (r := c.get("/api/users/profile/", headers=student.headers)).status_code != 200:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.2)
        assert c.get("/readyz").status_code == 200
        # The commands answered 503 go on in the background, and may well be stored:
        # a 503 says "not known", which is what the Idempotency-Key is for.
        recorder = s.container.store.recorder
        head, quiet_since = recorder.max_notification_id(), time.monotonic()
        while time.monotonic() - quiet_since < 1.0:
            time.sleep(0.1)
            if (now := recorder.max_notification_id()) != head:
                head, quiet_since = now, time.monotonic()
        r = c.put("/api/users/profile/", headers=student.headers, json={"name": "After"})
        assert r.status_code == 200 and r.json()["name"] == "After"
        # The client retries the command that got a 503: its first outcome, and it ran once.
        retried = c.put("/api/users/profile/", json={"name": "Keyed"},
                        headers={**student.headers, "Idempotency-Key": "outage-1"})
        assert retried.status_code == 200, retried.text
        history = s.container.store.events.get(UUID(student.id))
        assert [getattr(e, "name", None) for e in history].count("Keyed") == 1


def test_connections_the_database_dropped_fail_no_request(
        smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path, session_check_seconds=0)
        with running_server(settings) as s, s.client() as c:
            student = register_student(c)
            for _ in range(5):  # every pool has connections open
                assert c.get("/api/users/profile/", headers=student.headers
                             ).status_code == 200
            name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
            with psycopg.connect(conftest.ADMIN_URL, autocommit=True) as admin:
                dropped = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchone()
            assert dropped is not None and dropped[0] > 0
            time.sleep(1.5)  # as after a restart: the pooled connections sat broken
            for i in range(5):
                r = c.put("/api/users/profile/", headers=student.headers,
                          json={"name": f"Again {i}"})
                assert r.status_code == 200, r.text
                assert c.get("/api/users/profile/", headers=student.headers
                             ).status_code == 200
