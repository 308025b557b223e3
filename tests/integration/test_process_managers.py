"""The relay, dramatiq on the real Redis, a real worker and aiosmtpd: mail process managers."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from redis import Redis
from typer.testing import CliRunner

from application.processes import Policy
from domain.accounts import Account
from domain.errors import Invalid
from infrastructure import messaging
from infrastructure.messaging import PolicyRunner, failure_count, failures
from interfaces.cli import app as cli
from tests.conftest import PASSWORD, REDIS_URL, Mailbox, Server, settings_env, unique_email


def _register(client: httpx.Client, email: str, track: str = "FSD") -> UUID:
    r = client.post("/api/auth/register/", json={
        "email": email, "password": PASSWORD, "name": "Linus", "track": track})
    assert r.status_code == 201
    return UUID(r.json()["user"]["id"])


def test_student_registration_sends_one_welcome_email(
    client: httpx.Client, mailbox: Mailbox,
) -> None:
    email = unique_email()
    _register(client, email)
    message = mailbox.wait_for(email, "Welcome to ApraNova")
    body = message.get_payload(decode=True).decode()
    assert "Hello Linus" in body and "Full-Stack Development" in body
    time.sleep(0.5)
    assert len([m for m in mailbox.to(email) if "Welcome" in m["Subject"]]) == 1


def test_admin_created_staff_get_no_welcome_but_a_verification_email(
    client: httpx.Client, mailbox: Mailbox, server: Server,
) -> None:
    from domain.roles import Role

    email = unique_email("staff")
    server.container.accounts.create_administrator(email, "Op", PASSWORD, Role.ADMIN)
    mailbox.wait_for(email, "Confirm your email")
    assert not any("Welcome" in m["Subject"] for m in mailbox.to(email))


def _position_of_registration(server: Server, account_id: UUID) -> int:
    recorder = server.container.store.recorder
    for n in recorder.select_notifications(start=1, limit=100_000):
        if n.originator_id == account_id and n.originator_version == 1:
            return n.id
    raise AssertionError("registration not in the log")


def test_redelivered_messages_do_not_send_twice(
    client: httpx.Client, mailbox: Mailbox, server: Server,
) -> None:
    email = unique_email()
    account_id = _register(client, email)
    mailbox.wait_for(email, "Confirm your email")
    position = _position_of_registration(server, account_id)
    # At-least-once delivery: the same (policy, event) arrives again, twice.
    server.container.dispatcher.send("verification_email", position)
    server.container.dispatcher.send("verification_email", position)
    time.sleep(1.5)
    assert len([m for m in mailbox.to(email) if "Confirm" in m["Subject"]]) == 1


def _failure(container: Any, policy: str, position: int) -> tuple[str, str] | None:
    with container.pool.connection() as conn:
        row = conn.execute(
            "SELECT status, error FROM pm_processed WHERE policy = %s AND notification_id = %s",
            (policy, position)).fetchone()
    return (row[0], row[1]) if row else None


def test_a_policy_that_keeps_failing_is_retried_then_recorded_not_lost(
    server: Server, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the real worker: a transient failure is retried, and once its retries are
    spent the `on_retry_exhausted` actor records it; a deterministic one is recorded at
    once, without retries."""
    monkeypatch.setattr(messaging, "MAX_RETRIES", 1)  # one retry, 0.2-0.4 s later
    container = server.container
    calls: dict[str, int] = {"broken": 0, "refused": 0}

    def broken(event: object) -> None:
        calls["broken"] += 1
        raise RuntimeError("mail server on fire")

    def refused(event: object) -> None:
        calls["refused"] += 1
        raise Invalid("this event can never be mailed")

    policies = [Policy("broken_policy", (Account.Registered,), broken),
                Policy("refused_policy", (Account.Registered,), refused)]
    runner = PolicyRunner(container.store, container.pending, policies)
    broker = messaging.make_broker(Redis.from_url(REDIS_URL), f"pm-test-{uuid.uuid4().hex}")
    dispatcher = messaging.Dispatcher(broker, policies, lambda: runner)
    account_id = container.accounts.register_student(
        unique_email(), "F", PASSWORD, __import__("domain.roles").roles.Track.FULL_STACK
    ).account_id
    position = _position_of_registration(server, account_id)
    worker = messaging.start_worker(broker, 2, 10)
    try:
        for name in ("broken_policy", "refused_policy"):
            dispatcher.send(name, position)
        deadline = time.monotonic() + 20
        while (_failure(container, "broken_policy", position) is None
               or _failure(container, "refused_policy", position) is None):
            assert time.monotonic() < deadline, calls
            time.sleep(0.1)
    finally:
        worker.stop()
        broker.client.close()
    assert _failure(container, "broken_policy", position) == (
        "failed", "RuntimeError: mail server on fire")
    assert _failure(container, "refused_policy", position) == (
        "failed", "Invalid: this event can never be mailed")
    assert calls == {"broken": 2, "refused": 1}
    # Once recorded, a redelivery does not run it again.
    runner.run("broken_policy", position)
    assert calls["broken"] == 2


def test_relay_resumes_from_its_position_after_a_restart(
    server: Server, client: httpx.Client, mailbox: Mailbox, tmp_path: Path,
) -> None:
    background = server.background
    relays = [c for c in background.components if getattr(c, "name", "") == "relay"]
    assert relays, "the server runs a relay"
    relays[0].stop()
    background.components.remove(relays[0])
    email = unique_email()
    _register(client, email)  # logged while no relay runs
    time.sleep(0.5)
    assert mailbox.to(email) == []
    background.start_relay()
    mailbox.wait_for(email, "Welcome to ApraNova")
    mailbox.wait_for(email, "Confirm your email")


def test_an_event_a_policy_cannot_even_read_is_recorded_and_does_not_hold_up_the_rest(
    server: Server, monkeypatch: pytest.MonkeyPatch, client: httpx.Client,
) -> None:
    container = server.container
    handled: list[object] = []
    account_id = container.accounts.register_student(
        unique_email(), "F", PASSWORD, __import__("domain.roles").roles.Track.FULL_STACK
    ).account_id
    bad = _position_of_registration(server, account_id)
    good_id = container.accounts.register_student(
        unique_email(), "G", PASSWORD, __import__("domain.roles").roles.Track.FULL_STACK
    ).account_id
    good = _position_of_registration(server, good_id)
    runner = PolicyRunner(container.store, container.pending,
                          [Policy("reader_policy", (Account.Registered,), handled.append)])
    decode = container.store.mapper.to_domain_event

    def undecodable(stored: object) -> object:
        if getattr(stored, "id", None) == bad:
            raise ValueError("cannot decode \x00 this")
        return decode(stored)  # type: ignore[arg-type]

    monkeypatch.setattr(container.store.mapper, "to_domain_event", undecodable)
    with pytest.raises(ValueError):  # an event nobody can read: recorded, not retried
        runner.run("reader_policy", bad)
    runner.run("reader_policy", good)
    assert [e.originator_id for e in handled] == [good_id]  # type: ignore[attr-defined]
    failed = [f for f in failures(container.pool) if f["policy"] == "reader_policy"]
    assert [(f["position"], f["error"]) for f in failed] == [
        (bad, "ValueError: cannot decode \ufffd this")]
    assert failed[0]["topic"].endswith("Account.Registered")
    assert failure_count(container.pool) >= 1
    assert "apranova_policy_failures" in client.get("/metrics").text
    settings_env(monkeypatch, container.settings)
    listed = CliRunner().invoke(cli, ["failed-policies"])
    assert listed.exit_code == 1
    assert f"reader_policy at position {bad}" in listed.output
