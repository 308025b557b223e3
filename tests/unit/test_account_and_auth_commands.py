"""Accounts and sign-in on the in-memory log with fakes of every port: given events,
when a command, then the events recorded or the error raised."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from application.accounts import AccountCommands, UserChanges
from application.auth import (
    PASSWORD_RESET,
    VERIFY_EMAIL,
    AuthCommands,
    LoginLimits,
    RateLimited,
    Unauthenticated,
)
from application.authorization import Actor
from application.eventstore import EventStore
from domain.accounts import Account, ResetRequests
from domain.errors import Conflict, Forbidden, Gone
from domain.roles import Role, Track
from infrastructure.jwt_tokens import JwtTokens
from tests.unit.fakes import (
    Clock,
    Credentials,
    Hasher,
    Limiter,
    OneTime,
    Sessions,
    event_names,
    in_memory_store,
)

PASSWORD = "correct horse battery staple"


@dataclass
class World:
    store: EventStore
    accounts: AccountCommands
    auth: AuthCommands
    credentials: Credentials
    sessions: Sessions
    one_time: OneTime
    tokens: JwtTokens


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        credentials, sessions, one_time = Credentials(), Sessions(), OneTime()
        tokens = JwtTokens("unit-" + "s" * 40, "apranova", "apranova-api", 900, 3600)
        hasher = Hasher()
        yield World(store, AccountCommands(store, credentials, hasher, sessions),
                    AuthCommands(store, credentials, hasher, sessions, tokens, one_time,
                                 Limiter(), Clock(), LoginLimits(per_account=3, per_ip=100)),
                    credentials, sessions, one_time, tokens)


def test_a_student_registers_and_a_second_registration_is_told_by_event(world: World) -> None:
    first = world.accounts.register_student("Ada@Example.com", "Ada", PASSWORD,
                                            Track.DATA_PROFESSIONAL)
    again = world.accounts.register_student("ada@example.com", "Eve", PASSWORD,
                                            Track.FULL_STACK)
    assert again.account_id != first.account_id  # the answer looks like a new account
    assert event_names(world.store, first.account_id) == ["Registered",
                                                           "RegistrationAttempted"]
    assert world.store.load(Account, first.account_id).email == "ada@example.com"
    assert world.credentials.password_hash(first.account_id) == f"hashed:{PASSWORD}"
    with pytest.raises(Conflict):  # an administrator is told plainly
        world.accounts.create_account(Actor(first.account_id, Role.ADMIN), "ada@example.com",
                                      "Ada", PASSWORD, Role.TRAINER, None)


def test_login_refresh_rotation_and_logout(world: World) -> None:
    account = world.accounts.register_student("bob@example.com", "Bob", PASSWORD,
                                              Track.FULL_STACK).account_id
    with pytest.raises(Unauthenticated):
        world.auth.login("bob@example.com", "wrong password", "10.0.0.1")
    with pytest.raises(Unauthenticated):
        world.auth.login("nobody@example.com", PASSWORD, "10.0.0.1")
    logged_in = world.auth.login("bob@example.com", PASSWORD, "10.0.0.1")
    claims = world.tokens.decode_access(logged_in.tokens.access)
    assert claims.account_id == account
    rotated = world.auth.refresh(logged_in.tokens.refresh)
    with pytest.raises(Unauthenticated):  # the spent refresh token ends the session
        world.auth.refresh(logged_in.tokens.refresh)
    with pytest.raises(Unauthenticated):
        world.auth.refresh(rotated.refresh)
    fresh = world.auth.login("bob@example.com", PASSWORD, "10.0.0.1")
    session = world.tokens.decode_access(fresh.tokens.access).session_id
    world.auth.logout(session, None)
    assert not world.sessions.is_active(session, account)


def test_logins_are_limited_per_account(world: World) -> None:
    world.accounts.register_student("cy@example.com", "Cy", PASSWORD, Track.FULL_STACK)
    for _ in range(3):
        with pytest.raises(Unauthenticated):
            world.auth.login("cy@example.com", "wrong password", "10.0.0.2")
    with pytest.raises(RateLimited) as limited:  # even with the right password now
        world.auth.login("cy@example.com", PASSWORD, "10.0.0.2")
    assert limited.value.retry_after == 60


def test_verification_and_password_reset_by_one_time_key(world: World) -> None:
    account = world.accounts.register_student("di@example.com", "Di", PASSWORD,
                                              Track.FULL_STACK).account_id
    key = world.one_time.issue(account, VERIFY_EMAIL, 3600)
    world.auth.verify_email(key)
    with pytest.raises(Gone):
        world.auth.verify_email(key)
    world.auth.request_password_reset("di@example.com", "10.0.0.3")
    world.auth.request_password_reset("unknown@example.com", "10.0.0.3")
    requests = ResetRequests.id_for("di@example.com")
    assert event_names(world.store, requests) == ["Opened", "Asked"]
    [asked] = [e for e in world.store.events.get(requests) if type(e).__name__ == "Asked"]
    world.auth.pass_on_reset(asked)  # the process manager's half
    assert event_names(world.store, account)[-1] == "PasswordResetRequested"
    session = world.sessions.create(account, "jti", world.auth.clock.now())
    reset_key = world.one_time.issue(account, PASSWORD_RESET, 900)
    world.auth.confirm_password_reset(reset_key, "another fine password")
    assert world.credentials.password_hash(account) == "hashed:another fine password"
    assert not world.sessions.is_active(session, account)  # every session ends
    with pytest.raises(Gone):
        world.auth.confirm_password_reset(reset_key, "yet another password")


def test_administrators_change_roles_and_nobody_their_own(world: World) -> None:
    root = world.accounts.create_administrator("root@example.com", "Root", PASSWORD,
                                               Role.SUPERADMIN).account_id
    admin = Actor(world.accounts.create_administrator(
        "adm@example.com", "Adm", PASSWORD, Role.ADMIN).account_id, Role.ADMIN)
    student = world.accounts.register_student("ed@example.com", "Ed", PASSWORD,
                                              Track.FULL_STACK).account_id
    session = world.sessions.create(student, "jti", world.auth.clock.now())
    world.accounts.update_user(admin, student, UserChanges(role=Role.TRAINER, reason="hired"))
    assert world.store.load(Account, student).role is Role.TRAINER
    assert not world.sessions.is_active(session, student)  # the old role's tokens end
    with pytest.raises(Forbidden):
        world.accounts.update_user(admin, root, UserChanges(is_active=False))
    with pytest.raises(Forbidden):
        world.accounts.update_user(admin, admin.id, UserChanges(name="Me"))
    assert event_names(world.store, root) == ["Registered"]
