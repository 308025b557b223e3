"""The event store's caches: commands see every stored change, readers share no copies."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.domain import Aggregate, event

from application.eventstore import EventStore
from infrastructure.persistence import eventsourcing_env
from tests.conftest import new_database


class Counter(Aggregate):
    def __init__(self) -> None:
        self.n = 0

    class Bumped(Aggregate.Event):
        by: int

    @event(Bumped)
    def bump(self, by: int) -> None:
        self.n += by


class Other(Aggregate):
    pass


def test_cached_aggregates_follow_changes_stored_by_another_process() -> None:
    with new_database() as url:
        env = eventsourcing_env(url)
        mine, theirs = EventStore(env=env), EventStore(env=env)
        counter = Counter()
        mine.save(counter)
        assert mine.load(Counter, counter.id).n == 0  # now cached here
        other_copy = theirs.load(Counter, counter.id)
        other_copy.bump(5)
        theirs.save(other_copy)
        # The cached aggregate is brought forward with the stored event, and a command's
        # copy is its own: changing it leaves the cache as it was.
        loaded = mine.load(Counter, counter.id)
        assert (loaded.n, loaded.version) == (5, 2)
        loaded.bump(100)
        assert mine.load(Counter, counter.id).n == 5
        mine.close()
        theirs.close()


def test_read_only_aggregates_are_shared_per_version_and_renewed_on_change() -> None:
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url))
        counter = Counter()
        store.save(counter, other := Other())
        first = store.find_read_only(Counter, counter.id)
        assert first is not None and first.n == 0
        assert store.find_read_only(Counter, counter.id) is first  # no copy per reader
        writable = store.load(Counter, counter.id)
        writable.bump(3)
        store.save(writable)
        renewed = store.find_read_only(Counter, counter.id)
        assert renewed is not None and renewed is not first and renewed.n == 3
        assert first.n == 0  # what an earlier reader holds does not change under it
        assert store.find_read_only(Counter, other.id) is None  # another kind
        assert store.find_read_only(Counter, uuid4()) is None  # none at all
        store.close()


def test_the_position_of_an_aggregate_is_that_of_its_latest_event() -> None:
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url))
        counter, other = Counter(), Counter()
        store.save(counter)
        store.save(other)
        counter.bump(1)
        latest = store.commit(counter)
        store.save(Other())
        assert store.position_of(counter.id) == latest
        assert 0 < store.position_of(other.id) < latest
        assert store.position_of(uuid4()) == 0
        store.close()
