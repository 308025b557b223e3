"""The log's promise to its followers: an event that appears never appears behind one
already read, even with many concurrent writers."""

from __future__ import annotations

import random
import threading
import time
from typing import Any
from uuid import UUID

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


def test_an_append_waits_until_an_earlier_one_commits() -> None:
    """The deterministic half of that promise: an append holds the log's lock until it
    commits, so a later one can neither take a position nor commit before it does."""
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url, pool_size=4))
        recorder = store.recorder
        first, second = Tick(), Tick()
        first.tick(1)
        second.tick(2)
        held = stored(store, first)
        later = threading.Thread(target=store.save, args=(second,))
        with recorder.datastore.get_connection() as conn, conn.transaction():
            # The first append, as the store makes it, stopped before its commit.
            ids = [r["notification_id"] for r in
                   conn.execute(recorder.insert_locked, (held, None)).fetchall()]
            later.start()
            later.join(timeout=0.5)
            assert later.is_alive(), "the later append did not wait for the lock"
            assert recorder.select_notifications(start=1, limit=10) == []
        later.join(timeout=10)
        assert not later.is_alive()
        logged = recorder.select_notifications(start=1, limit=10)
        store.close()
    assert [n.originator_id for n in logged] == [first.id, first.id, second.id, second.id]
    assert [n.id for n in logged][:2] == ids


def test_sixteen_writers_with_rollbacks_a_follower_sees_every_commit_once_in_order() -> None:
    """Appends that took positions and rolled back leave gaps no follower waits on or
    reads past: a subscription sees every committed event once, in position order."""
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
                        conn.execute(recorder.insert_locked, (stored(store, tick), None))
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
