"""Credentials, refresh sessions and one-time tokens: the secrets kept out of the event log."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from psycopg_pool import ConnectionPool

from application.ports import PendingSignIn, ProviderIdentity, SignInTicket
from infrastructure.vault import EncryptedVault

log = logging.getLogger("apranova.sessions")

def _digest(token: str) -> bytes:
    # The tokens are 256-bit random, so a fast hash is enough to make a leaked table useless.
    return hashlib.sha256(token.encode()).digest()


class PostgresCredentials:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def set_password_hash(self, account_id: UUID, hashed: str) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_credentials (account_id, password_hash) VALUES (%s, %s) "
                "ON CONFLICT (account_id) DO UPDATE "
                "SET password_hash = EXCLUDED.password_hash, updated_at = now()",
                (account_id, hashed),
            )

    def password_hash(self, account_id: UUID) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT password_hash FROM auth_credentials WHERE account_id = %s", (account_id,)
            ).fetchone()
        return row[0] if row else None

    def forget(self, account_id: UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM auth_credentials WHERE account_id = %s", (account_id,))


class PostgresSessions:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def create(self, account_id: UUID, refresh_jti: str, expires_at: datetime) -> UUID:
        session_id = uuid4()
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_sessions (id, account_id, refresh_jti, expires_at) "
                "VALUES (%s, %s, %s, %s)",
                (session_id, account_id, refresh_jti, expires_at),
            )
        return session_id

    def rotate(self, session_id: UUID, account_id: UUID, presented_jti: str,
               new_jti: str) -> bool:
        # Compare-and-swap: of two concurrent uses of one refresh token only one wins.
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE auth_sessions SET refresh_jti = %s WHERE id = %s AND account_id = %s "
                "AND refresh_jti = %s AND revoked_at IS NULL AND expires_at > now() "
                "RETURNING id",
                (new_jti, session_id, account_id, presented_jti),
            ).fetchone()
        return row is not None

    def revoke(self, session_id: UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_sessions SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL",
                (session_id,),
            )

    def revoke_all(self, account_id: UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "UPDATE auth_sessions SET revoked_at = now() "
                "WHERE account_id = %s AND revoked_at IS NULL",
                (account_id,),
            )

    def is_active(self, session_id: UUID, account_id: UUID) -> bool:
        """Whether the session is live and is the account's: a token naming one
        account with another's session is no session at all."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM auth_sessions WHERE id = %s AND account_id = %s "
                "AND revoked_at IS NULL AND expires_at > now()",
                (session_id, account_id),
            ).fetchone()
        return row is not None


class PostgresOneTimeTokens:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def issue(self, account_id: UUID, purpose: str, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_one_time_tokens (token_hash, account_id, purpose, expires_at) "
                "VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
                (_digest(token), account_id, purpose, ttl_seconds),
            )
        return token

    def peek(self, token: str, purpose: str) -> UUID | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT account_id FROM auth_one_time_tokens WHERE token_hash = %s "
                "AND purpose = %s AND used_at IS NULL AND expires_at > now()",
                (_digest(token), purpose),
            ).fetchone()
        return row[0] if row else None

    def consume(self, token: str, purpose: str) -> UUID | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE auth_one_time_tokens SET used_at = now() WHERE token_hash = %s "
                "AND purpose = %s AND used_at IS NULL AND expires_at > now() RETURNING account_id",
                (_digest(token), purpose),
            ).fetchone()
        return row[0] if row else None


class RememberedSessions:
    """The session store, remembering for a few seconds which sessions were found active.

    Every authenticated request checks its session; answering from memory spares it a
    database round trip and a thread-pool hop (measured with bench/endpoints.py).
    A revocation forgets at once in this process and is announced to the others (API
    workers) through `announce`; each runs `listen` to hear them. Should an announcement
    be lost, a process still re-checks within `seconds`. 0 checks every time.

    Memory is trusted only while this process hears the announcements: with the channel
    down (Redis unavailable) every check goes to the database, so a session revoked
    elsewhere meanwhile is refused at once (it was accepted for 28 s), and a revocation
    whose announcement cannot be sent still succeeds.
    """

    def __init__(self, store: PostgresSessions, seconds: float,
                 announce: Callable[[str], object] = lambda _: None,
                 clock: Callable[[], float] = time.monotonic, size: int = 100_000) -> None:
        self.store = store
        self.seconds = seconds
        self.announce = announce
        self.clock = clock
        self.size = size
        self._active: dict[UUID, tuple[UUID, float]] = {}  # session -> (account, until)
        self._lock = threading.Lock()
        self.hearing = False

    def create(self, account_id: UUID, refresh_jti: str, expires_at: datetime) -> UUID:
        return self.store.create(account_id, refresh_jti, expires_at)

    def rotate(self, session_id: UUID, account_id: UUID, presented_jti: str,
               new_jti: str) -> bool:
        return self.store.rotate(session_id, account_id, presented_jti, new_jti)

    def revoke(self, session_id: UUID) -> None:
        self.store.revoke(session_id)
        self._spread(f"session:{session_id}")

    def revoke_all(self, account_id: UUID) -> None:
        self.store.revoke_all(account_id)
        self._spread(f"account:{account_id}")

    def _spread(self, revocation: str) -> None:
        self.forget(revocation)
        try:
            self.announce(revocation)
        except Exception:
            # Stored already, which is what counts: processes that cannot hear it are
            # checking the database on every request (see `hearing`).
            log.warning("could not announce %s; the other processes re-check", revocation,
                        exc_info=True)

    def forget(self, what: str) -> None:
        """Forget a revoked `session:<id>`, every session of `account:<id>`, or `all`."""
        kind, _, raw = what.partition(":")
        with self._lock:
            if kind == "session":
                self._active.pop(UUID(raw), None)
            elif kind == "account":
                account = UUID(raw)
                for session_id in [s for s, (a, _) in self._active.items() if a == account]:
                    del self._active[session_id]
            elif what == "all":
                self._active.clear()
            else:
                raise ValueError(f"not a revocation: {what!r}")

    def listen(self, subscribe: Callable[[], Iterator[str]]) -> None:
        """Apply announced revocations until `subscribe`'s iterator ends. Whatever was
        announced before it (re)subscribed is unknown, so everything is forgotten first."""
        messages = subscribe()
        self.forget("all")
        self.hearing = True
        try:
            for message in messages:
                try:
                    self.forget(message)
                except ValueError:
                    continue  # not ours to understand; nothing to forget
        finally:
            self.hearing = False

    def remembered(self, session_id: UUID, account_id: UUID) -> bool:
        """True if the session was found active, as this account's, within the last
        `seconds` (no I/O), and revocations since could be heard."""
        if not self.hearing:
            return False
        with self._lock:
            entry = self._active.get(session_id)
        return entry is not None and entry[0] == account_id and entry[1] > self.clock()

    def is_active(self, session_id: UUID, account_id: UUID) -> bool:
        if self.remembered(session_id, account_id):
            return True
        started = self.clock()
        active = self.store.is_active(session_id, account_id)
        if active and self.seconds > 0:
            with self._lock:
                if len(self._active) >= self.size:
                    now = self.clock()
                    self._active = {s: e for s, e in self._active.items() if e[1] > now}
                # Measured from before the query, so a revocation that raced it is
                # never remembered as active for longer than `seconds` after it.
                self._active[session_id] = (account_id, started + self.seconds)
        return active


class PostgresSignInFlows:
    """Sign-in flows and tickets; a row is deleted when used, so its personal data (a
    ticket's email and name) lives at most the ticket's few minutes."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def begin(self, state: str, browser: str, flow: PendingSignIn, ttl_seconds: int) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM auth_signin_flows WHERE expires_at < now()")
            conn.execute(
                "INSERT INTO auth_signin_flows (state_hash, browser_hash, provider, verifier, "
                "nonce, track, next_url, expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, "
                "now() + make_interval(secs => %s))",
                (_digest(state), _digest(browser), flow.provider, flow.verifier, flow.nonce,
                 flow.track, flow.next_url, ttl_seconds))

    def finish(self, state: str, browser: str) -> PendingSignIn | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "DELETE FROM auth_signin_flows WHERE state_hash = %s RETURNING browser_hash, "
                "provider, verifier, nonce, track, next_url, expires_at > now()",
                (_digest(state),)).fetchone()
        if row is None or not row[6] or not hmac.compare_digest(row[0], _digest(browser)):
            return None
        return PendingSignIn(provider=row[1], verifier=row[2], nonce=row[3], track=row[4],
                             next_url=row[5])

    def issue_ticket(self, ticket: SignInTicket, ttl_seconds: int) -> str:
        token = secrets.token_urlsafe(32)
        identity = ticket.identity
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM auth_signin_tickets WHERE expires_at < now()")
            conn.execute(
                "INSERT INTO auth_signin_tickets (ticket_hash, kind, provider, issuer, "
                "subject, email, name, account_id, track, expires_at) VALUES (%s, %s, %s, "
                "%s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
                (_digest(token), ticket.kind, identity.provider, identity.issuer,
                 identity.subject, identity.email, identity.name, ticket.account_id,
                 ticket.track, ttl_seconds))
        return token

    _TICKET = ("kind, provider, issuer, subject, email, name, account_id, track")

    @staticmethod
    def _ticket(row: tuple[Any, ...] | None) -> SignInTicket | None:
        if row is None:
            return None
        return SignInTicket(kind=row[0], identity=ProviderIdentity(
            provider=row[1], issuer=row[2], subject=row[3], email=row[4], name=row[5]),
            account_id=row[6], track=row[7])

    def ticket(self, token: str) -> SignInTicket | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"SELECT {self._TICKET} FROM auth_signin_tickets WHERE ticket_hash = %s "
                "AND expires_at > now()", (_digest(token),)).fetchone()
        return self._ticket(row)

    def redeem_ticket(self, token: str) -> SignInTicket | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                f"DELETE FROM auth_signin_tickets WHERE ticket_hash = %s "
                f"AND expires_at > now() RETURNING {self._TICKET}",
                (_digest(token),)).fetchone()
        return self._ticket(row)


TOTP_SECRET = "totp-secret"


class PostgresTwoFactor:
    """TOTP secrets in the encrypted vault; the last used step and recovery digests here."""

    def __init__(self, pool: ConnectionPool, vault: EncryptedVault) -> None:
        self.pool = pool
        self.vault = vault

    def begin(self, account_id: UUID, secret: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO auth_mfa (account_id) VALUES (%s) ON CONFLICT "
                         "(account_id) DO UPDATE SET active = false, last_step = 0, "
                         "updated_at = now()", (account_id,))
            conn.execute("DELETE FROM auth_mfa_recovery WHERE account_id = %s", (account_id,))
        self.vault.put(account_id, TOTP_SECRET, secret)

    def secret(self, account_id: UUID) -> tuple[str, bool] | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT active FROM auth_mfa WHERE account_id = %s",
                               (account_id,)).fetchone()
        secret = self.vault.get(account_id, TOTP_SECRET) if row else None
        return (secret, bool(row[0])) if row and secret else None

    def activate(self, account_id: UUID, recovery_codes: list[str]) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE auth_mfa SET active = true, updated_at = now() "
                         "WHERE account_id = %s", (account_id,))
            conn.execute("DELETE FROM auth_mfa_recovery WHERE account_id = %s", (account_id,))
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO auth_mfa_recovery (account_id, code_hash) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING",
                    [(account_id, _digest(code)) for code in recovery_codes])

    def use_step(self, account_id: UUID, step: int) -> bool:
        # Compare-and-set: of two uses of one code (or of an older one) only one wins.
        with self.pool.connection() as conn:
            row = conn.execute("UPDATE auth_mfa SET last_step = %s WHERE account_id = %s "
                               "AND last_step < %s RETURNING 1",
                               (step, account_id, step)).fetchone()
        return row is not None

    def use_recovery(self, account_id: UUID, code: str) -> int | None:
        with self.pool.connection() as conn:
            used = conn.execute(
                "UPDATE auth_mfa_recovery SET used_at = now() WHERE account_id = %s "
                "AND code_hash = %s AND used_at IS NULL RETURNING 1",
                (account_id, _digest(code))).fetchone()
        return None if used is None else self.remaining_recovery(account_id)

    def remaining_recovery(self, account_id: UUID) -> int:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT count(*) FROM auth_mfa_recovery WHERE account_id = %s "
                               "AND used_at IS NULL", (account_id,)).fetchone()
        return int(row[0]) if row else 0

    def remove(self, account_id: UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM auth_mfa_recovery WHERE account_id = %s", (account_id,))
            conn.execute("DELETE FROM auth_mfa WHERE account_id = %s", (account_id,))
            conn.execute("DELETE FROM auth_secrets WHERE owner = %s AND kind = %s",
                         (account_id, TOTP_SECRET))
