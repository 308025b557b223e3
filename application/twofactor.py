"""Two-factor sign-in with time-based codes (TOTP, RFC 6238) and recovery codes.

Enrolling keeps a secret that becomes active only once a code from it is right. Each time
step's code works once; codes are limited per account. The secret lives encrypted outside
the log and recovery codes only as digests; events say who enrolled, disabled or used a
recovery code, never what the secret or a code was.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from uuid import UUID

from application.auth import (
    MFA_CHALLENGE,
    AuthCommands,
    LoggedIn,
    RateLimited,
    Unauthenticated,
)
from application.authorization import Actor
from application.eventstore import EventStore, retry_on_conflict
from application.ports import Authenticator, Clock, RateLimiter, TwoFactorSecrets
from domain.accounts import Account
from domain.errors import Conflict, Invalid

RECOVERY_CODES = 10
ATTEMPTS, WINDOW_SECONDS = 5, 300
ISSUER = "ApraNova"


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg: str


@dataclass(frozen=True)
class Enrolled:
    recovery_codes: list[str]
    logged_in: LoggedIn


@dataclass(frozen=True)
class TwoFactorStatus:
    enabled: bool
    required: bool
    recovery_codes_left: int


def recovery_code() -> str:
    """Ten characters of an unambiguous alphabet in two groups: about 50 bits."""
    alphabet = "23456789abcdefghjkmnpqrstuvwxyz"
    raw = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


class TwoFactorCommands:
    def __init__(self, store: EventStore, auth: AuthCommands, secrets_store: TwoFactorSecrets,
                 authenticator: Authenticator, limiter: RateLimiter, clock: Clock) -> None:
        self.store = store
        self.auth = auth
        self.secrets = secrets_store
        self.authenticator = authenticator
        self.limiter = limiter
        self.clock = clock

    def _limit(self, account_id: UUID) -> None:
        wait = self.limiter.hit(f"mfa:account:{account_id}", ATTEMPTS, WINDOW_SECONDS)
        if wait is not None:
            raise RateLimited(wait)

    def _check_code(self, account_id: UUID, secret: str, code: str) -> None:
        step = self.authenticator.step_of(secret, code, self.clock.now())
        if step is None or not self.secrets.use_step(account_id, step):
            raise Unauthenticated("The code is wrong or was used already", code="INVALID_CODE")

    def status(self, actor: Actor) -> TwoFactorStatus:
        account = self.store.load(Account, actor.id, "User")
        return TwoFactorStatus(account.two_factor, account.role in self.auth.mfa_required,
                               self.secrets.remaining_recovery(actor.id)
                               if account.two_factor else 0)

    def enrol(self, actor: Actor) -> Enrolment:
        account = self.store.load(Account, actor.id, "User")
        if account.two_factor:
            raise Conflict("Two-factor sign-in is already on", code="MFA_ALREADY_ENABLED")
        secret = self.authenticator.new_secret()
        self.secrets.begin(actor.id, secret)
        uri = self.authenticator.uri(secret, account.email, ISSUER)
        return Enrolment(secret, uri, self.authenticator.qr_svg(uri))

    def confirm(self, actor: Actor, code: str) -> Enrolled:
        """The first right code turns it on: recovery codes (shown once) and a new session,
        every other session of the account ended."""
        self._limit(actor.id)
        found = self.secrets.secret(actor.id)
        account = self.store.load(Account, actor.id, "User")
        if found is None or account.two_factor:
            raise Conflict("Start enrolling first", code="MFA_NOT_ENROLLING")
        self._check_code(actor.id, found[0], code)

        def command() -> int:
            fresh = self.store.load(Account, actor.id, "User")
            fresh.enrol_two_factor(actor_id=actor.id)
            return self.store.commit(fresh)

        retry_on_conflict(command)
        codes = [recovery_code() for _ in range(RECOVERY_CODES)]
        self.secrets.activate(actor.id, codes)
        self.limiter.reset(f"mfa:account:{actor.id}")
        self.auth.sessions.revoke_all(actor.id)
        return Enrolled(codes, self.auth.start_session(
            self.store.load(Account, actor.id, "User")))

    def verify(self, challenge: str, code: str | None, recovery: str | None) -> LoggedIn:
        """The second step of signing in: the challenge with a code or a recovery code."""
        account_id = self.auth.one_time.peek(challenge, MFA_CHALLENGE)
        if account_id is None:
            raise Unauthenticated("The sign-in challenge is invalid, used or expired",
                                  code="MFA_CHALLENGE_INVALID")
        if (code is None) == (recovery is None):
            raise Invalid("Send either a code or a recovery code", code="CODE_REQUIRED")
        self._limit(account_id)
        found = self.secrets.secret(account_id)
        if found is None:
            raise Unauthenticated("The code is wrong or was used already", code="INVALID_CODE")
        if code is not None:
            self._check_code(account_id, found[0], code)
        else:
            assert recovery is not None
            remaining = self.secrets.use_recovery(account_id, recovery.strip().lower())
            if remaining is None:
                raise Unauthenticated("The code is wrong or was used already",
                                      code="INVALID_CODE")

            def used() -> int:
                account = self.store.load(Account, account_id, "User")
                account.recovery_code_used(actor_id=account_id, remaining=remaining)
                return self.store.commit(account)

            retry_on_conflict(used)
        if self.auth.one_time.consume(challenge, MFA_CHALLENGE) is None:
            raise Unauthenticated("The sign-in challenge is invalid, used or expired",
                                  code="MFA_CHALLENGE_INVALID")
        self.limiter.reset(f"mfa:account:{account_id}")
        return self.auth.start_session(self.store.load(Account, account_id, "User"))

    def disable(self, actor: Actor, code: str) -> int:
        """Only with a current code: a stolen session alone cannot turn it off."""
        self._limit(actor.id)
        account = self.store.load(Account, actor.id, "User")
        found = self.secrets.secret(actor.id)
        if not account.two_factor or found is None:
            raise Conflict("Two-factor sign-in is not on", code="MFA_NOT_ENABLED")
        self._check_code(actor.id, found[0], code)

        def command() -> int:
            fresh = self.store.load(Account, actor.id, "User")
            fresh.disable_two_factor(actor_id=actor.id)
            return self.store.commit(fresh)

        position = retry_on_conflict(command)
        self.secrets.remove(actor.id)
        return position
