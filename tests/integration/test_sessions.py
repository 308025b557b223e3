"""Remembered sessions: how long a process may trust that a session is still active."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from psycopg_pool import ConnectionPool

from infrastructure import migrations
from infrastructure.authstore import PostgresSessions, RememberedSessions
from tests.conftest import new_database


@pytest.fixture
def store() -> Iterator[PostgresSessions]:
    with new_database() as url:
        migrations.upgrade(url)
        pool = ConnectionPool(url, min_size=1, max_size=2, kwargs={"autocommit": True},
                              open=True)
        try:
            yield PostgresSessions(pool)
        finally:
            pool.close()


def test_a_revocation_elsewhere_is_seen_once_the_memory_expires(store: PostgresSessions) -> None:
    now = [1000.0]
    heard: list[str] = []
    here = RememberedSessions(store, 5, announce=heard.append, clock=lambda: now[0])
    here.hearing = True  # as while its listener is subscribed
    elsewhere = RememberedSessions(store, 5)
    account = uuid4()
    session = here.create(account, "jti", datetime.now(UTC) + timedelta(days=1))
    assert here.is_active(session, account) and here.remembered(session, account)
    elsewhere.revoke(session)  # announced to no one here
    assert here.is_active(session, account)  # still trusted from memory...
    now[0] += 5.1
    # ...not after
    assert not here.remembered(session, account) and not here.is_active(session, account)
    assert heard == []


def test_revoking_here_forgets_at_once_and_announces(store: PostgresSessions) -> None:
    heard: list[str] = []
    here = RememberedSessions(store, 60, announce=heard.append)
    here.hearing = True
    account, other = uuid4(), uuid4()
    expires = datetime.now(UTC) + timedelta(days=1)
    first, second = here.create(account, "a", expires), here.create(account, "b", expires)
    third = here.create(other, "c", expires)
    assert all(here.is_active(s, a) for s, a in ((first, account), (second, account),
                                                  (third, other)))
    here.revoke(first)
    assert not here.is_active(first, account) and here.is_active(second, account)
    here.revoke_all(account)
    assert not here.is_active(second, account) and here.remembered(third, other)
    assert heard == [f"session:{first}", f"account:{account}"]


def test_announcements_heard_from_another_process_are_applied(store: PostgresSessions) -> None:
    here = RememberedSessions(store, 60)
    account = uuid4()
    expires = datetime.now(UTC) + timedelta(days=1)
    kept, dropped = here.create(account, "a", expires), here.create(uuid4(), "b", expires)
    here.is_active(kept, account)
    assert not here.remembered(kept, account)  # nothing heard yet: memory is not trusted
    seen: list[tuple[str, bool]] = []

    def subscribe() -> Iterator[str]:
        def messages() -> Iterator[str]:
            # Subscribed: trusted again, from nothing (what came before is unknown).
            seen.append(("subscribed", here.remembered(kept, account)))
            here.is_active(kept, account)
            seen.append(("checked", here.remembered(kept, account)))
            yield from (f"session:{dropped}", "nonsense:x", "session:not-a-uuid")
            seen.append(("others revoked", here.remembered(kept, account)))
            yield f"account:{account}"
            seen.append(("account revoked", here.remembered(kept, account)))

        return messages()

    here.listen(subscribe)
    assert seen == [("subscribed", False), ("checked", True), ("others revoked", True),
                    ("account revoked", False)]


def test_while_the_channel_is_down_every_check_asks_the_database(
        store: PostgresSessions) -> None:
    def unreachable(_: str) -> None:
        raise ConnectionError("Redis is down")

    here = RememberedSessions(store, 60, announce=unreachable)
    elsewhere = RememberedSessions(store, 60, announce=unreachable)
    account = uuid4()
    session = here.create(account, "a", datetime.now(UTC) + timedelta(days=1))
    assert here.is_active(session, account)
    elsewhere.revoke(session)  # stored, though it could not be announced
    assert not here.is_active(session, account)
    assert not store.is_active(session, account)
