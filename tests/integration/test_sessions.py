"""Remembered sessions: how long a process may trust that a session is still active."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from infrastructure.authstore import SCHEMA, PostgresSessions, RememberedSessions
from tests.conftest import new_database


@pytest.fixture
def store() -> Iterator[PostgresSessions]:
    with new_database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(SCHEMA)
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
    here.listen(lambda: iter([f"session:{dropped}", "nonsense:x", "session:not-a-uuid"]))
    # Subscribing forgets everything (what was announced before is unknown); then the
    # announcements apply, and ones it cannot read are skipped.
    assert not here.remembered(kept, account)
    here.is_active(kept, account)
    here.listen(lambda: iter([f"account:{account}"]))
    assert not here.remembered(kept, account)
