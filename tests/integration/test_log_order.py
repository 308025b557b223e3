"""The log's promise to its followers: an event that appears never appears behind one
already read, even with many concurrent writers."""

from __future__ import annotations

import random
import threading
import time
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.domain import Aggregate, event

from application.eventstore import EventStore
from infrastructure.persistence import eventsourcing_env
from tests.conftest import new_database


class Tick(Aggregate):
    class Ticked(Aggregate.Event):
        n: int

    @event(Ticked)
    def tick(self, n: int) -> None:
        self.n = n


def test_a_tailing_reader_misses_nothing_under_concurrent_writes() -> None:
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=12))
        writers, per_writer = 8, 150
        done = threading.Event()
        seen: list[int] = []

        def write() -> None:
            for n in range(per_writer):
                tick = Tick()
                tick.tick(n)
                store.save(tick)

        def tail() -> None:
            # A follower reads strictly after the last position it has seen, as the
            # projections and the relay do.
            after = 0
            while True:
                finished = done.is_set()
                batch = store.recorder.select_notifications(start=after + 1, limit=500)
                seen.extend(n.id for n in batch)
                if batch:
                    after = batch[-1].id
                elif finished:
                    return

        reader = threading.Thread(target=tail)
        reader.start()
        threads = [threading.Thread(target=write) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        done.set()
        reader.join()
        everything = [n.id for n in store.recorder.select_notifications(start=1, limit=10**6)]
        store.close()
    assert len(everything) == writers * per_writer * 2
    assert seen == everything


def stored(store: EventStore, *aggregates: Aggregate) -> list[Any]:
    """The aggregates' pending events as the recorder's append takes them."""
    recorder = store.recorder
    return [recorder.construct_pg_stored_event(s.originator_id, s.originator_version,
                                               s.topic, s.state)
            for a in aggregates for s in map(store.mapper.to_stored_event, a.collect_events())]


def test_an_append_open_across_many_later_commits_holds_them_back() -> None:
    """The deterministic half of that promise: an append that has taken its positions
    but not committed keeps every later one unread, however many commit meanwhile, and
    then all are read in position order, none passed over."""
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=4))
        recorder = store.recorder
        first = Tick()
        first.tick(1)
        later = [Tick() for _ in range(50)]
        subscription = recorder.subscribe(gt=None)
        with recorder.datastore.get_connection() as conn, conn.transaction():
            # The first append, as the store makes it, stopped before its commit.
            ids = [r["notification_id"] for r in
                   conn.execute(recorder.insert, (stored(store, first), None)).fetchall()]
            for tick in later:  # appends do not wait for it: they commit
                store.save(tick)
            assert len(store.recorder.select_events(later[-1].id)) == 1
            assert recorder.select_notifications(start=1, limit=500) == []
            assert recorder.max_notification_id() is None
        logged = recorder.select_notifications(start=1, limit=500)
        with subscription:
            tailed = [next(subscription).id for _ in logged]
        store.close()
    assert [n.originator_id for n in logged[:2]] == [first.id, first.id]
    assert [n.id for n in logged][:2] == ids
    assert [n.originator_id for n in logged[2:]] == [t.id for t in later]
    assert tailed == [n.id for n in logged]


def test_a_rolled_back_append_leaves_no_gap_a_follower_waits_on() -> None:
    """An append that rolls back announces nothing; the followers it held back still
    read what committed after it."""
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=4))
        recorder = store.recorder
        lost, kept = Tick(), Tick()
        subscription = recorder.subscribe(gt=None)
        with subscription:
            with recorder.datastore.get_connection() as conn:
                conn.autocommit = False
                conn.execute(recorder.insert, (stored(store, lost), None))
                store.save(kept)
                conn.rollback()
                conn.autocommit = True
            got = next(subscription)
        store.close()
    assert got.originator_id == kept.id


def test_an_append_must_be_the_first_write_of_its_transaction() -> None:
    """Its transaction id is what orders it: one taken before the log's lock could be
    lower than an earlier append's, and the watermark would let a later event pass."""
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=4))
        recorder = store.recorder
        with recorder.datastore.get_connection() as conn:
            conn.execute("CREATE TABLE other (n int)")
            with pytest.raises(psycopg.errors.ActiveSqlTransaction), conn.transaction():
                conn.execute("INSERT INTO other VALUES (1)")
                conn.execute(recorder.insert, (stored(store, Tick()), None))
            # The log's lock was not left held: the next append goes through.
            store.save(Tick())
        store.close()


def test_sixteen_writers_with_rollbacks_a_follower_sees_every_commit_once_in_order() -> None:
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=20))
        recorder = store.recorder
        writers, per_writer = 16, 40
        committed: list[UUID] = []
        seen: list[int] = []

        def write(seed: int) -> None:
            rolls = random.Random(seed)
            for n in range(per_writer):
                tick = Tick()
                tick.tick(n)
                if rolls.random() < 0.3:  # takes positions, then rolls back
                    with recorder.datastore.get_connection() as conn:
                        conn.autocommit = False
                        conn.execute(recorder.insert, (stored(store, tick), None))
                        time.sleep(rolls.random() / 100)
                        conn.rollback()
                        conn.autocommit = True
                else:
                    store.save(tick)
                    committed.append(tick.id)

        subscription = recorder.subscribe(gt=None)

        def tail() -> None:
            seen.extend(notification.id for notification in subscription)

        with subscription:
            reader = threading.Thread(target=tail)
            reader.start()
            threads = [threading.Thread(target=write, args=(k,)) for k in range(writers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            everything = recorder.select_notifications(start=1, limit=10**6)
            deadline = time.monotonic() + 30
            while len(seen) < len(everything) and time.monotonic() < deadline:
                time.sleep(0.05)
        reader.join(timeout=10)
        store.close()
    assert {n.originator_id for n in everything} == set(committed)
    assert len(everything) == 2 * len(committed)  # created and ticked
    assert seen == [n.id for n in everything]
    assert seen == sorted(set(seen))


def test_a_transaction_open_in_another_database_holds_nothing_back() -> None:
    """Snapshots span the server: the watermark leaves other databases' transactions
    out, or one long transaction elsewhere would stop every follower here."""
    with new_database() as url, new_database() as elsewhere:
        store = EventStore(env=eventsourcing_env(url, pool_size=4))
        with psycopg.connect(elsewhere) as other:  # a transaction, left open
            other.execute("CREATE TABLE t (n int)")
            tick = Tick()
            store.save(tick)
            read = store.recorder.select_notifications(start=1, limit=10)
            head = store.recorder.max_notification_id()
        store.close()
    assert [n.originator_id for n in read] == [tick.id]
    assert head == read[0].id


def test_a_reader_by_type_does_not_start_past_an_event_still_being_appended() -> None:
    """A reader by type first finds its first wanted event, then reads from it in a
    second statement. Found among committed events while a lower one is still being
    appended, it would be read past that one once it commits: the finding obeys the
    watermark too."""
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=4))
        recorder = store.recorder
        early, late = Tick(), Tick()
        topics = [store.mapper.to_stored_event(early.collect_events()[0]).topic]
        early = Tick()
        with recorder.datastore.get_connection() as conn, conn.transaction():
            conn.execute(recorder.insert, (stored(store, early), None))
            store.save(late)
            with recorder.datastore.get_connection() as other:
                first = other.execute(recorder.first_wanted, {
                    "topics": topics, "after": 0, "upto": 2**63 - 1}).fetchone()
            assert recorder.select_notifications(start=1, limit=10, topics=topics) == []
        logged = recorder.select_notifications(start=1, limit=10, topics=topics)
        store.close()
    assert first is not None and first["first"] is None
    assert [n.originator_id for n in logged] == [early.id, late.id]
