"""Authentication commands: log in, refresh with rotation, log out, verify email, reset password."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from application.eventstore import EventStore, retry_on_conflict
from application.ports import (
    Clock,
    CredentialStore,
    OneTimeTokens,
    PasswordHasher,
    RateLimiter,
    SessionStore,
    TokenIssuer,
    TokenPair,
)
from domain.accounts import (
    Account,
    EmailClaim,
    ResetRequests,
    check_password_policy,
    normalise_email,
)
from domain.errors import DomainError, Forbidden, Gone
from domain.privacy import ERASED
from domain.roles import Role
from domain.students import Student

VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"
VERIFY_EMAIL_TTL = 48 * 3600
PASSWORD_RESET_TTL = 3600
MFA_CHALLENGE = "mfa_challenge"
MFA_CHALLENGE_TTL = 300


class Unauthenticated(DomainError):
    """Credentials or token missing, wrong, expired or revoked (HTTP 401)."""

    code = "NOT_AUTHENTICATED"


class RateLimited(DomainError):
    code = "RATE_LIMITED"

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many attempts, try again later", retry_after=retry_after)
        self.retry_after = retry_after


@dataclass(frozen=True)
class LoginLimits:
    per_account: int = 5
    account_window: int = 900
    per_ip: int = 30
    ip_window: int = 60


@dataclass(frozen=True)
class UserSummary:
    id: UUID
    email: str
    role: str
    track: str | None
    name: str


@dataclass(frozen=True)
class LoggedIn:
    tokens: TokenPair
    user: UserSummary


@dataclass(frozen=True)
class Challenge:
    """The password (or provider) was right; a second factor finishes the sign-in."""

    token: str
    expires_in: int


SignedIn = LoggedIn | Challenge


class AuthCommands:
    def __init__(
        self,
        store: EventStore,
        credentials: CredentialStore,
        hasher: PasswordHasher,
        sessions: SessionStore,
        tokens: TokenIssuer,
        one_time: OneTimeTokens,
        limiter: RateLimiter,
        clock: Clock,
        limits: LoginLimits,
        mfa_required: frozenset[Role] = frozenset(),
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.hasher = hasher
        self.sessions = sessions
        self.tokens = tokens
        self.one_time = one_time
        self.limiter = limiter
        self.clock = clock
        self.limits = limits
        # Roles that must enrol in two-factor sign-in; until then they may only enrol.
        self.mfa_required = mfa_required
        # Verified against when the email is unknown, so timing doesn't reveal which emails exist.
        self._dummy_hash = hasher.hash("not-a-real-password-0123456789")

    def login(self, email: str, password: str, client_ip: str) -> SignedIn:
        return self.sign_in(self.prove_password(email, password, client_ip))

    def prove_password(self, email: str, password: str, client_ip: str) -> Account:
        """The account of `email`, if `password` is its own; limited per address and per
        account, and as slow for an unknown email as for a known one."""
        email = normalise_email(email)
        limits = self.limits
        wait = self.limiter.hit(f"login:ip:{client_ip}", limits.per_ip, limits.ip_window)
        account_key = f"login:account:{email}"
        wait = self.limiter.hit(account_key, limits.per_account, limits.account_window) or wait
        if wait is not None:
            raise RateLimited(wait)
        account = self.account_by_email(email)
        hashed = self.credentials.password_hash(account.id) if account else None
        if not self.hasher.verify(hashed or self._dummy_hash, password) or account is None:
            raise Unauthenticated("Invalid email or password", code="INVALID_CREDENTIALS")
        self.limiter.reset(account_key)
        if hashed and self.hasher.needs_rehash(hashed):
            self.credentials.set_password_hash(account.id, self.hasher.hash(password))
        return account

    def sign_in(self, account: Account) -> SignedIn:
        """An account that proved who it is (password or provider): a new session, or,
        with two-factor sign-in on, the challenge its code answers."""
        if not account.active:
            raise Forbidden("The account is deactivated", code="ACCOUNT_INACTIVE")
        if account.two_factor:
            return Challenge(self.one_time.issue(account.id, MFA_CHALLENGE, MFA_CHALLENGE_TTL),
                             MFA_CHALLENGE_TTL)
        return self.start_session(account)

    def enrol_only(self, account: Account) -> bool:
        return account.role in self.mfa_required and not account.two_factor

    def start_session(self, account: Account) -> LoggedIn:
        if not account.active:
            raise Forbidden("The account is deactivated", code="ACCOUNT_INACTIVE")
        jti = self.tokens.new_jti()
        expires = self.clock.now() + timedelta(seconds=self.tokens.refresh_ttl_seconds)
        session_id = self.sessions.create(account.id, jti, expires)
        pair = self.tokens.issue(account.id, account.role.value, session_id, jti,
                                 enrol_only=self.enrol_only(account))
        return LoggedIn(pair, self.summary(account))

    def refresh(self, refresh_token: str) -> TokenPair:
        claims = self.tokens.decode_refresh(refresh_token)
        new_jti = self.tokens.new_jti()
        if not self.sessions.rotate(claims.session_id, claims.account_id, claims.jti, new_jti):
            # A rotated-away token came back: someone holds a copy. End the whole session.
            self.sessions.revoke(claims.session_id)
            raise Unauthenticated("Refresh token was already used or revoked",
                                  code="TOKEN_REVOKED")
        account = self.store.find(Account, claims.account_id)
        if account is None or not account.active:
            self.sessions.revoke(claims.session_id)
            raise Unauthenticated("The account is not active", code="TOKEN_REVOKED")
        return self.tokens.issue(account.id, account.role.value, claims.session_id, new_jti,
                                 enrol_only=self.enrol_only(account))

    def logout(self, session_id: UUID, refresh_token: str | None) -> None:
        if refresh_token is not None:
            claims = self.tokens.decode_refresh(refresh_token)
            if claims.session_id != session_id:
                raise Unauthenticated("The refresh token belongs to another session",
                                      code="TOKEN_INVALID")
        self.sessions.revoke(session_id)

    def summary(self, account: Account) -> UserSummary:
        student = self.store.find(Student, Student.id_for(account.id))
        return UserSummary(
            id=account.id, email=account.email, role=account.role.value,
            track=student.track.value if student else None, name=account.name,
        )

    def account_by_email(self, email: str) -> Account | None:
        claim = self.store.find(EmailClaim, EmailClaim.id_for(email))
        if claim is None or claim.account_id is None:
            return None
        return self.store.find(Account, claim.account_id)

    # -- email verification and password reset ----------------------------------------------

    def verify_email(self, key: str) -> int:
        account_id = self.one_time.consume(key, VERIFY_EMAIL)
        if account_id is None:
            raise Gone("The verification link is invalid, used or expired")

        def command() -> int:
            account = self.store.load(Account, account_id, "User")
            account.verify_email(actor_id=account_id)
            return self.store.commit(account)

        return retry_on_conflict(command)

    def limit_registrations(self, client_ip: str) -> None:
        """Registrations from one address are limited like logins from it."""
        limits = self.limits
        wait = self.limiter.hit(f"register:ip:{client_ip}", limits.per_ip, limits.ip_window)
        if wait is not None:
            raise RateLimited(wait)

    def request_password_reset(self, email: str, client_ip: str) -> None:
        """Always succeeds from the caller's view, so it can't be used to probe emails."""
        limits = self.limits
        wait = self.limiter.hit(f"reset:ip:{client_ip}", limits.per_ip, limits.ip_window)
        wait = self.limiter.hit(f"reset:account:{normalise_email(email)}",
                                limits.per_account, limits.account_window) or wait
        if wait is not None:
            raise RateLimited(wait)
        email = normalise_email(email)

        def command() -> int:
            # The same work for a known and an unknown address: no lookup here.
            requests = self._reset_requests(email)
            requests.ask()
            return self.store.commit(requests)

        retry_on_conflict(command)

    def reset_streams(self, email: str) -> Iterator[ResetRequests]:
        """The reset-request streams of an email, oldest first; all but the last have had
        their email erased."""
        generation = 0
        while (found := self.store.find(ResetRequests,
                                        ResetRequests.id_for(email, generation))) is not None:
            yield found
            generation += 1

    def _reset_requests(self, email: str) -> ResetRequests:
        """The stream a request for `email` goes to: the live one, or a new one."""
        generation = 0
        for stream in self.reset_streams(email):  # one read for an email never erased
            if stream.email != ERASED:
                return stream
            generation += 1
        return ResetRequests(email=email, generation=generation)

    def pass_on_reset(self, event: ResetRequests.Asked) -> None:
        """The process manager's half of a reset request: the account with that address,
        if there is an active one, is asked to reset (which mails the key)."""
        email = self.store.load(ResetRequests, event.originator_id).email
        account = self.account_by_email(email)
        if account is None or not account.active:
            return

        def command() -> int:
            fresh = self.store.load(Account, account.id, "User")
            fresh.request_password_reset(actor_id=None)
            return self.store.commit(fresh)

        retry_on_conflict(command)

    def confirm_password_reset(self, key: str, new_password: str) -> int:
        # Check the new password before using the link up, so a weak choice can be retried.
        owner = self.one_time.peek(key, PASSWORD_RESET)
        if owner is not None:
            check_password_policy(new_password, self.store.load(Account, owner, "User").email)
        account_id = self.one_time.consume(key, PASSWORD_RESET)
        if account_id is None:
            raise Gone("The reset link is invalid, used or expired")
        self.credentials.set_password_hash(account_id, self.hasher.hash(new_password))
        self.sessions.revoke_all(account_id)

        def command() -> int:
            fresh = self.store.load(Account, account_id, "User")
            fresh.password_changed(actor_id=account_id, via="reset")
            return self.store.commit(fresh)

        return retry_on_conflict(command)
