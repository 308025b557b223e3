"""Fakes of the application's ports, for given/when/then tests on the in-memory log."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import UUID, uuid4

from application.eventstore import EventStore
from application.ports import Email, PersonalCipher


@contextmanager
def in_memory_store(cipher: PersonalCipher | None = None) -> Iterator[EventStore]:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, cipher=cipher)
    try:
        yield store
    finally:
        store.close()


def event_names(store: EventStore, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in store.events.get(aggregate_id)]


class Clock:
    """Stands still until a test moves `at`; events carry the real time, so by default
    it starts from it."""

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime.now(UTC)

    def now(self) -> datetime:
        return self.at


class Hasher:
    """Readable hashes: what matters here is which password a hash was made from."""

    def hash(self, password: str) -> str:
        return f"hashed:{password}"

    def verify(self, hashed: str, password: str) -> bool:
        return hashed == f"hashed:{password}"

    def needs_rehash(self, hashed: str) -> bool:
        return False


class Credentials:
    def __init__(self) -> None:
        self.hashes: dict[UUID, str] = {}

    def set_password_hash(self, account_id: UUID, hashed: str) -> None:
        self.hashes[account_id] = hashed

    def password_hash(self, account_id: UUID) -> str | None:
        return self.hashes.get(account_id)

    def forget(self, account_id: UUID) -> None:
        self.hashes.pop(account_id, None)


class Sessions:
    def __init__(self) -> None:
        self.live: dict[UUID, tuple[UUID, str]] = {}  # session -> (account, refresh jti)

    def create(self, account_id: UUID, refresh_jti: str, expires_at: datetime) -> UUID:
        session_id = uuid4()
        self.live[session_id] = (account_id, refresh_jti)
        return session_id

    def rotate(self, session_id: UUID, account_id: UUID, presented_jti: str,
               new_jti: str) -> bool:
        if self.live.get(session_id) != (account_id, presented_jti):
            self.live.pop(session_id, None)  # a spent token presented again ends it
            return False
        self.live[session_id] = (account_id, new_jti)
        return True

    def revoke(self, session_id: UUID) -> None:
        self.live.pop(session_id, None)

    def revoke_all(self, account_id: UUID) -> None:
        self.live = {s: v for s, v in self.live.items() if v[0] != account_id}

    def is_active(self, session_id: UUID, account_id: UUID) -> bool:
        return self.live.get(session_id, (None,))[0] == account_id


class OneTime:
    def __init__(self) -> None:
        self.keys: dict[str, tuple[UUID, str]] = {}

    def issue(self, account_id: UUID, purpose: str, ttl_seconds: int) -> str:
        key = secrets.token_urlsafe(16)
        self.keys[key] = (account_id, purpose)
        return key

    def peek(self, token: str, purpose: str) -> UUID | None:
        found = self.keys.get(token)
        return found[0] if found and found[1] == purpose else None

    def consume(self, token: str, purpose: str) -> UUID | None:
        owner = self.peek(token, purpose)
        if owner is not None:
            del self.keys[token]
        return owner


class Limiter:
    """Counts hits per key; over the limit, asks to wait a minute."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}

    def hit(self, key: str, limit: int, window_seconds: int) -> int | None:
        self.hits[key] = self.hits.get(key, 0) + 1
        return 60 if self.hits[key] > limit else None

    def reset(self, key: str) -> None:
        self.hits.pop(key, None)


class Mailbox:
    def __init__(self) -> None:
        self.sent: list[Email] = []

    def send(self, message: Email) -> None:
        self.sent.append(message)

    def subjects(self, to: str) -> list[str]:
        return [m.subject for m in self.sent if m.to == to]


class Attempts:
    """The attempt index of quizzes: a test says which attempts a quiz has."""

    def __init__(self) -> None:
        self.started: dict[UUID, list[UUID]] = {}

    def attempts_of(self, quiz_id: UUID) -> list[UUID]:
        return self.started.get(quiz_id, [])
