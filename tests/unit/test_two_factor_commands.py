"""Two-factor sign-in on the in-memory log with fakes of its stores and a fixed clock:
given an account, when it enrols, signs in, verifies or disables, then the events, the
session or the error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pyotp
import pytest

from application.accounts import AccountCommands
from application.auth import AuthCommands, Challenge, LoggedIn, LoginLimits, RateLimited
from application.authorization import Actor
from application.eventstore import EventStore
from application.twofactor import TwoFactorCommands
from domain.accounts import Account
from domain.errors import Conflict, DomainError, Invalid
from domain.roles import Role, Track
from infrastructure.jwt_tokens import JwtTokens
from infrastructure.totp import PyOtpAuthenticator
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
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


@dataclass
class Secrets:
    kept: dict[UUID, list[object]] = field(default_factory=dict)  # [secret, active, step]
    recovery: dict[UUID, set[str]] = field(default_factory=dict)

    def begin(self, account_id: UUID, secret: str) -> None:
        self.kept[account_id] = [secret, False, 0]

    def secret(self, account_id: UUID) -> tuple[str, bool] | None:
        found = self.kept.get(account_id)
        return (str(found[0]), bool(found[1])) if found else None

    def activate(self, account_id: UUID, recovery_codes: list[str]) -> None:
        self.kept[account_id][1] = True
        self.recovery[account_id] = set(recovery_codes)

    def use_step(self, account_id: UUID, step: int) -> bool:
        found = self.kept[account_id]
        if int(str(found[2])) >= step:
            return False
        found[2] = step
        return True

    def use_recovery(self, account_id: UUID, code: str) -> int | None:
        codes = self.recovery.get(account_id, set())
        if code not in codes:
            return None
        codes.remove(code)
        return len(codes)

    def remaining_recovery(self, account_id: UUID) -> int:
        return len(self.recovery.get(account_id, set()))

    def remove(self, account_id: UUID) -> None:
        self.kept.pop(account_id, None)
        self.recovery.pop(account_id, None)


@dataclass
class World:
    store: EventStore
    accounts: AccountCommands
    auth: AuthCommands
    mfa: TwoFactorCommands
    secrets: Secrets
    clock: Clock
    sessions: Sessions

    def code(self, account_id: UUID, later: int = 0) -> str:
        secret = self.secrets.kept[account_id][0]
        return pyotp.TOTP(str(secret)).at(self.clock.at + timedelta(seconds=30 * later))

    def enrolled(self, role: Role = Role.STUDENT) -> tuple[Actor, list[str]]:
        email = f"{role.value}-{len(self.secrets.kept)}@example.com"
        if role is Role.STUDENT:
            account_id = self.accounts.register_student(email, "A", PASSWORD,
                                                        Track.DATA_PROFESSIONAL).account_id
        else:
            account_id = self.accounts.create_administrator(email, "A", PASSWORD,
                                                            role).account_id
        actor = Actor(account_id, role)
        self.mfa.enrol(actor)
        return actor, self.mfa.confirm(actor, self.code(account_id)).recovery_codes

    def challenge(self, actor: Actor) -> str:
        account = self.auth.account_by_email(self.email(actor))
        assert account is not None
        result = self.auth.sign_in(account)
        assert isinstance(result, Challenge)
        return result.token

    def email(self, actor: Actor) -> str:
        return self.store.load(Account, actor.id).email


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        credentials, sessions, hasher, clock = Credentials(), Sessions(), Hasher(), Clock(NOW)
        tokens = JwtTokens("unit-" + "s" * 40, "apranova", "apranova-api", 900, 3600)
        limiter = Limiter()
        auth = AuthCommands(store, credentials, hasher, sessions, tokens, OneTime(), limiter,
                            clock, LoginLimits(), frozenset({Role.ADMIN, Role.SUPERADMIN}))
        secrets = Secrets()
        mfa = TwoFactorCommands(store, auth, secrets, PyOtpAuthenticator(), limiter, clock)
        yield World(store, AccountCommands(store, credentials, hasher, sessions), auth, mfa,
                    secrets, clock, sessions)


def code_of(error: pytest.ExceptionInfo[DomainError]) -> str:
    return error.value.code


def test_enrolling_gives_a_secret_its_uri_and_qr_code_not_yet_active(world: World) -> None:
    student = world.accounts.register_student("s@example.com", "S", PASSWORD,
                                              Track.DATA_PROFESSIONAL).account_id
    enrolment = world.mfa.enrol(Actor(student, Role.STUDENT))
    assert enrolment.uri.startswith("otpauth://totp/ApraNova:s%40example.com?secret=")
    assert enrolment.qr_svg.startswith("<svg") and world.secrets.kept[student][1] is False
    assert "TwoFactorEnrolled" not in event_names(world.store, student)


def test_the_first_right_code_turns_it_on_with_ten_recovery_codes(world: World) -> None:
    actor, codes = world.enrolled()
    assert len(set(codes)) == 10 and event_names(world.store, actor.id)[-1] == \
        "TwoFactorEnrolled"
    assert world.mfa.status(actor).recovery_codes_left == 10
    with pytest.raises(Conflict) as error:
        world.mfa.enrol(actor)
    assert code_of(error) == "MFA_ALREADY_ENABLED"


def test_confirming_without_enrolling_or_with_a_wrong_code_is_refused(world: World) -> None:
    student = Actor(world.accounts.register_student("w@example.com", "W", PASSWORD,
                                                    Track.DATA_PROFESSIONAL).account_id,
                    Role.STUDENT)
    with pytest.raises(Conflict) as conflict:
        world.mfa.confirm(student, "123456")
    assert code_of(conflict) == "MFA_NOT_ENROLLING"
    world.mfa.enrol(student)
    with pytest.raises(DomainError) as error:
        world.mfa.confirm(student, world.code(student.id, later=5))
    assert code_of(error) == "INVALID_CODE"


def test_an_administrator_is_enrol_only_until_enrolled(world: World) -> None:
    admin = world.accounts.create_administrator("a@example.com", "A", PASSWORD, Role.ADMIN)
    account = world.auth.account_by_email("a@example.com")
    assert account is not None and world.auth.enrol_only(account)
    assert world.mfa.status(Actor(admin.account_id, Role.ADMIN)).required is True
    actor, _ = world.enrolled(Role.ADMIN)
    after = world.auth.account_by_email(world.email(actor))
    assert after is not None and not world.auth.enrol_only(after)


def test_a_challenge_and_a_code_sign_in_once(world: World) -> None:
    actor, _ = world.enrolled()
    challenge = world.challenge(actor)
    signed = world.mfa.verify(challenge, world.code(actor.id, later=1), None)
    assert isinstance(signed, LoggedIn) and signed.user.id == actor.id
    with pytest.raises(DomainError) as used:
        world.mfa.verify(challenge, world.code(actor.id, later=1), None)
    assert code_of(used) == "MFA_CHALLENGE_INVALID"
    with pytest.raises(DomainError) as replay:  # the same step's code in a new challenge
        world.mfa.verify(world.challenge(actor), world.code(actor.id, later=1), None)
    assert code_of(replay) == "INVALID_CODE"


def test_a_recovery_code_works_once_and_is_recorded(world: World) -> None:
    actor, codes = world.enrolled()
    world.mfa.verify(world.challenge(actor), None, f"  {codes[0].upper()} ")
    assert event_names(world.store, actor.id)[-1] == "RecoveryCodeUsed"
    with pytest.raises(DomainError) as error:
        world.mfa.verify(world.challenge(actor), None, codes[0])
    assert code_of(error) == "INVALID_CODE" and world.mfa.status(actor).recovery_codes_left == 9


@pytest.mark.parametrize(("code", "recovery"), [(None, None), ("123456", "abcde-fghij")])
def test_exactly_one_of_code_and_recovery_code(world: World, code: str | None,
                                               recovery: str | None) -> None:
    actor, _ = world.enrolled()
    with pytest.raises(Invalid) as error:
        world.mfa.verify(world.challenge(actor), code, recovery)
    assert code_of(error) == "CODE_REQUIRED"


def test_wrong_codes_are_limited(world: World) -> None:
    actor, _ = world.enrolled()
    challenge = world.challenge(actor)
    for _ in range(5):
        with pytest.raises(DomainError):
            world.mfa.verify(challenge, None, "wrong-code")
    with pytest.raises(RateLimited):
        world.mfa.verify(challenge, world.code(actor.id, later=1), None)


def test_disabling_needs_a_current_code_and_removes_the_secret(world: World) -> None:
    actor, _ = world.enrolled()
    with pytest.raises(DomainError):
        world.mfa.disable(actor, world.code(actor.id, later=9))
    assert world.mfa.disable(actor, world.code(actor.id, later=1)) > 0
    assert event_names(world.store, actor.id)[-1] == "TwoFactorDisabled"
    assert actor.id not in world.secrets.kept
    with pytest.raises(Conflict) as error:
        world.mfa.disable(actor, "123456")
    assert code_of(error) == "MFA_NOT_ENABLED"
