"""Ports: what the application needs from the outside world, as Protocols."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from uuid import UUID


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    def send(self, message: Email) -> None: ...


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, hashed: str, password: str) -> bool: ...

    def needs_rehash(self, hashed: str) -> bool: ...


class CredentialStore(Protocol):
    """Password hashes, kept outside the event log."""

    def set_password_hash(self, account_id: UUID, hashed: str) -> None: ...

    def password_hash(self, account_id: UUID) -> str | None: ...

    def forget(self, account_id: UUID) -> None: ...


@dataclass(frozen=True)
class Session:
    id: UUID
    account_id: UUID
    refresh_jti: str
    revoked: bool
    expires_at: datetime


class SessionStore(Protocol):
    """Refresh-token sessions with rotation and reuse detection."""

    def create(self, account_id: UUID, refresh_jti: str, expires_at: datetime) -> UUID: ...

    def rotate(self, session_id: UUID, account_id: UUID, presented_jti: str,
               new_jti: str) -> bool:
        """Swap the current jti if `presented_jti` is current; False means reuse or revoked."""
        ...

    def revoke(self, session_id: UUID) -> None: ...

    def revoke_all(self, account_id: UUID) -> None: ...

    def is_active(self, session_id: UUID, account_id: UUID) -> bool: ...


class OneTimeTokens(Protocol):
    """Single-use secrets (email verification, password reset); only their hashes are stored."""

    def issue(self, account_id: UUID, purpose: str, ttl_seconds: int) -> str: ...

    def peek(self, token: str, purpose: str) -> UUID | None:
        """The account a live token belongs to, without using it up."""
        ...

    def consume(self, token: str, purpose: str) -> UUID | None: ...


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        """Count one hit; return seconds to wait if over the limit, else None."""
        ...

    def reset(self, key: str) -> None: ...


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


@dataclass(frozen=True)
class RefreshClaims:
    account_id: UUID
    session_id: UUID
    jti: str


class TokenIssuer(Protocol):
    def issue(
        self, account_id: UUID, role: str, session_id: UUID, refresh_jti: str,
        enrol_only: bool = False,
    ) -> TokenPair:
        """`enrol_only`: the access token may only enrol in two-factor sign-in."""
        ...

    def new_jti(self) -> str: ...

    def decode_refresh(self, token: str) -> RefreshClaims: ...

    @property
    def refresh_ttl_seconds(self) -> int: ...


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    head: bytes


class FileStore(Protocol):
    """Content-addressed storage for uploads, outside the event log."""

    def put(self, chunks: Iterable[bytes], max_bytes: int) -> StoredFile:
        """Store the bytes; raise TooLarge past max_bytes (nothing is kept then)."""
        ...

    def path(self, sha256: str) -> Path | None: ...


class ChatNotifier(Protocol):
    def post(self, text: str) -> None: ...


@dataclass(frozen=True)
class QuizRequest:
    quiz_id: UUID
    title: str
    prompt: str
    generation_type: str
    num_questions: int
    track: str | None


@dataclass(frozen=True)
class GeneratedQuestions:
    """Questions as {text, type, explanation, options: [{text, correct}]}, plus provenance."""

    questions: list[dict[str, Any]]
    provenance: dict[str, Any]


class GenerationError(Exception):
    def __init__(self, reason: str, provenance: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.provenance = provenance


class QuizGenerator(Protocol):
    def generate(self, request: QuizRequest) -> GeneratedQuestions: ...


@dataclass(frozen=True)
class PaymentIntent:
    intent_id: str
    client_secret: str


class PaymentGateway(Protocol):
    def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> PaymentIntent: ...

    def refund(self, intent_id: str, idempotency_key: str) -> str: ...


@dataclass(frozen=True)
class HostedRepository:
    full_name: str
    url: str


class CodeHost(Protocol):
    def authorize_url(self, redirect_uri: str, scope: str, state: str, verifier: str) -> str:
        """Where to send the browser to grant `scope` (PKCE S256 with `verifier`)."""
        ...

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str
                      ) -> tuple[str, str]:
        """An OAuth code (and the flow's PKCE verifier) for (access token, login)."""
        ...

    def create_from_template(self, token: str, template: str, owner: str,
                             name: str) -> HostedRepository: ...


class TokenVault(Protocol):
    """Third-party access tokens, encrypted at rest, never in events."""

    def store(self, account_id: UUID, login: str, token: str) -> None: ...

    def token(self, account_id: UUID) -> str | None: ...


class StateSigner(Protocol):
    def pkce_verifier(self, state: str) -> str:
        """The PKCE code verifier of an OAuth flow, derived from its state with a server
        secret: nothing to store, and nobody without the secret can compute it."""
        ...


@dataclass(frozen=True)
class WorkspaceSpec:
    name: str
    image: str
    volume: str
    password: str
    labels: dict[str, str]
    container_port: int


@dataclass(frozen=True)
class RunningContainer:
    container_id: str
    host_port: int


class EngineUnavailable(Exception):
    """The workspace engine cannot be reached (not running, or no socket)."""


class WorkspaceRuntime(Protocol):
    """Every method raises EngineUnavailable when the engine cannot be reached."""

    def ensure_running(self, spec: WorkspaceSpec) -> RunningContainer:
        """Start the named container (creating it if needed); never a second one."""
        ...

    def wait_ready(self, host_port: int, timeout: float) -> bool: ...

    def stop(self, name: str) -> None: ...

    def remove(self, name: str, volume: str) -> None:
        """Remove the container and its volume (the student's files); gone ones are fine."""
        ...

    def state(self, name: str) -> str | None:
        """The engine's state of the container ('running', 'exited', ...) or None."""
        ...

    def managed(self) -> dict[str, str]:
        """Names and states of every workspace container the engine has."""
        ...


@runtime_checkable
class LogIndex(Protocol):
    """Questions about the log the store's recorder can answer with one indexed query
    (the PostgreSQL one does); without it the store asks the library's general reader."""

    def latest(self, aggregate_id: UUID) -> tuple[int, int] | None:
        """(version, log position) of the aggregate's latest event."""
        ...

    def created(self, aggregate_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates exist."""
        ...


class AttemptIndex(Protocol):
    def attempts_of(self, quiz_id: UUID) -> list[UUID]:
        """Every attempt ever started on the quiz, from the log (not a read model, which
        may lag a regrade)."""
        ...


# -- signing in with a provider (OpenID Connect, OAuth 2.0) ---------------------------------


@dataclass(frozen=True)
class ProviderAuthorization:
    """Where to send the browser, and what the flow must remember to finish it."""

    url: str
    state: str
    verifier: str  # PKCE code verifier (S256)
    nonce: str | None  # OpenID Connect only


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in. `email` is None unless the provider says it is
    verified; nothing here is a token."""

    provider: str
    issuer: str
    subject: str
    email: str | None
    name: str


class IdentityRefused(Exception):
    """What came back from the provider cannot be trusted or used (bad code, bad token,
    wrong nonce or audience, unreachable provider)."""


class IdentityProvider(Protocol):
    def authorization(self, redirect_uri: str) -> ProviderAuthorization: ...

    def identity(self, code: str, redirect_uri: str, verifier: str, nonce: str | None
                 ) -> ProviderIdentity:
        """Exchange the code and validate what the provider answers; IdentityRefused if
        it cannot be trusted."""
        ...


@dataclass(frozen=True)
class PendingSignIn:
    provider: str
    verifier: str
    nonce: str | None
    track: str | None
    next_url: str | None


@dataclass(frozen=True)
class SignInTicket:
    """A sign-in waiting for one more step: `signed_in` (a frontend exchanges it for
    tokens), `link` (the existing account must prove itself) or `signup` (a track)."""

    kind: str
    identity: ProviderIdentity
    account_id: UUID | None
    track: str | None


class SignInFlows(Protocol):
    """Flows begun in a browser and tickets of sign-ins half done: short-lived,
    single-use, kept outside the log (only digests of the secrets are stored)."""

    def begin(self, state: str, browser: str, flow: PendingSignIn, ttl_seconds: int
              ) -> None: ...

    def finish(self, state: str, browser: str) -> PendingSignIn | None:
        """The flow of this state begun in this browser, used up; None if unknown, used,
        expired or begun elsewhere."""
        ...

    def issue_ticket(self, ticket: SignInTicket, ttl_seconds: int) -> str: ...

    def ticket(self, token: str) -> SignInTicket | None:
        """A live ticket, without using it up."""
        ...

    def redeem_ticket(self, token: str) -> SignInTicket | None: ...


# -- two-factor sign-in (TOTP, RFC 6238) -----------------------------------------------------


class Authenticator(Protocol):
    """Time-based one-time passwords: secrets, their provisioning URI, and checking codes."""

    def new_secret(self) -> str: ...

    def uri(self, secret: str, account_name: str, issuer: str) -> str: ...

    def qr_svg(self, uri: str) -> str: ...

    def step_of(self, secret: str, code: str, at: datetime) -> int | None:
        """The time step whose code `code` is (the current one or a neighbour), or None."""
        ...


class TwoFactorSecrets(Protocol):
    """TOTP secrets (encrypted) and recovery codes (as digests), outside the log."""

    def begin(self, account_id: UUID, secret: str) -> None:
        """Keep a secret awaiting its first code, replacing one that was never confirmed."""
        ...

    def secret(self, account_id: UUID) -> tuple[str, bool] | None:
        """(secret, active) of the account, if it has begun enrolling."""
        ...

    def activate(self, account_id: UUID, recovery_codes: list[str]) -> None: ...

    def use_step(self, account_id: UUID, step: int) -> bool:
        """Use a time step once: False if it, or a later one, was used already."""
        ...

    def use_recovery(self, account_id: UUID, code: str) -> int | None:
        """Use a recovery code once; how many are left, or None if it is not one."""
        ...

    def remaining_recovery(self, account_id: UUID) -> int: ...

    def remove(self, account_id: UUID) -> None: ...


class PersonalCipher(Protocol):
    """Encrypts personal fields under a key per person, held outside the log; destroying
    the key erases the person from every copy of the log at once."""

    def seal(self, subject: UUID, plaintext: str) -> str:
        """The text encrypted under the subject's key (made on first use)."""
        ...

    def open(self, sealed: str) -> str | None:
        """The text, or None once its subject's key is destroyed."""
        ...

    def destroy(self, subject: UUID) -> None:
        """Destroy the subject's key, here and (soon) in every other process."""
        ...


class PersonalStores(Protocol):
    """What is kept about a person outside the log: credentials, sessions, secrets,
    two-factor rows, stored responses, sign-in tickets and uploaded files."""

    def forget(self, account_id: UUID, email: str, mentions: Sequence[str],
               files: Sequence[str]) -> None:
        """Delete all of it, and the files (sha256) given; failure texts quoting any of
        `mentions` (their name, login, provider subjects) are replaced, and sign-in
        tickets for those subjects deleted."""
        ...


class LogReader(Protocol):
    """The whole log in order, decoded, for an export (a rare, streamed read)."""

    def events(self, after: int, limit: int) -> list[tuple[int, Any]]:
        """(position, domain event) of up to `limit` events after `after`."""
        ...

    def unsealed(self, streams: Sequence[UUID]) -> int:
        """How many personal values these streams hold in plaintext (a log written before
        sealing, until `apranova privacy migrate`)."""
        ...


class PersonalRows(Protocol):
    """The read models' rows about a person, for an export."""

    def rows_of(self, account_id: UUID) -> dict[str, list[dict[str, Any]]]: ...
