"""The log's promise to its followers: an event that appears never appears behind one
already read, even with many concurrent writers."""

from __future__ import annotations

import threading

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
