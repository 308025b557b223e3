"""The event store's caches: commands see every stored change, readers share no copies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
from eventsourcing.domain import Aggregate, event
from eventsourcing.utils import get_topic

from application.eventstore import EventStore
from application.quizzes import QuizCommands
from domain.quizzes import Attempt
from infrastructure.bootstrap import Container, SystemClock, build
from infrastructure.persistence import LogAttemptIndex, eventsourcing_env
from tests.conftest import make_settings, new_database


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


@contextmanager
def fresh_store() -> Iterator[EventStore]:
    """An event store on a database of its own."""
    with new_database() as url:
        store = EventStore(env=eventsourcing_env(url))
        try:
            yield store
        finally:
            store.close()


@contextmanager
def fresh_container(tmp_path: Path) -> Iterator[Container]:
    """The whole composition on a database of its own."""
    with new_database() as url:
        container = build(make_settings(url, 1, tmp_path))
        try:
            yield container
        finally:
            container.close()


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
    with fresh_store() as store:
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


def test_the_position_of_an_aggregate_is_that_of_its_latest_event() -> None:
    with fresh_store() as store:
        counter, other = Counter(), Counter()
        store.save(counter)
        store.save(other)
        counter.bump(1)
        latest = store.commit(counter)
        store.save(Other())
        assert store.position_of(counter.id) == latest
        assert 0 < store.position_of(other.id) < latest
        assert store.position_of(uuid4()) == 0


def _filtered_out(plan: dict[str, Any]) -> int:
    """Rows a plan read and then threw away, over all its nodes."""
    return int(plan.get("Rows Removed by Filter", 0)) + sum(
        _filtered_out(child) for child in plan.get("Plans", []))


def test_reading_by_type_returns_what_the_log_order_scan_returns() -> None:
    with fresh_store() as store:
        counter, other = Counter(), Other()
        for i in range(40):
            counter.bump(i)
        store.save(counter, other)
        more = Other()
        store.save(more)
        library = super(type(store.recorder), store.recorder)
        topics = [get_topic(Other.Created), get_topic(Counter.Bumped)]
        for start, stop, inclusive, limit, wanted in [
                (None, None, True, 100, topics[:1]), (1, None, True, 10, topics),
                (5, 30, False, 100, topics), (41, None, True, 3, topics),
                (41, None, False, 3, topics[:1]), (43, None, True, 10, topics[1:]),
                (1, None, True, 100, topics + topics)]:
            ours = store.recorder.select_notifications(
                start, limit, stop, wanted, inclusive_of_start=inclusive)
            theirs = library.select_notifications(
                start, limit, stop, wanted, inclusive_of_start=inclusive)
            assert [n.id for n in ours] == [n.id for n in theirs]
            assert ours == theirs


def test_a_follower_skips_the_events_it_does_not_follow_without_reading_them(
        tmp_path: Path) -> None:
    """The relay follows few event types; its position stays on the last one it followed,
    and every new event wakes it. Reading on from there must not re-read what lies
    between (under load that was a third of a core)."""
    with fresh_container(tmp_path) as container:
        recorder = container.store.recorder
        wanted = Other()
        container.store.save(wanted)
        start = container.store.position_of(wanted.id)
        noise = Counter()
        for i in range(3000):
            noise.bump(i)
        container.store.save(noise)
        assert recorder.select_notifications(
            start, 500, topics=[get_topic(Other.Created)], inclusive_of_start=False) == []
        url = str(container.settings.database_url)
        with psycopg.ClientCursor(psycopg.connect(url, autocommit=True)) as cur:
            # The probe's plan once its prepared query is planned generically.
            query = recorder.first_wanted.as_string(cur.connection)  # type: ignore[attr-defined]
            for n, name in enumerate(("topics", "after", "upto"), 1):
                query = query.replace(f"%({name})s", f"${n}")
            cur.execute("SET plan_cache_mode = force_generic_plan")
            cur.execute(f"PREPARE follow(text[], bigint, bigint) AS {query}")

            def filtered_out() -> int:
                cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE follow(%s, %s, %s)",
                            ([get_topic(Other.Created)], start, 2**63 - 1))
                row = cur.fetchone()
                assert row is not None
                return _filtered_out(row[0][0]["Plan"])

            cur.execute("ANALYZE apranova_events")
            assert filtered_out() == 0
            cur.execute("DROP INDEX apranova_events_topic_idx")  # what it was before
            assert filtered_out() >= 3000
            cur.connection.close()


def test_the_log_waits_for_the_disk_and_read_models_do_not(tmp_path: Path) -> None:
    """Events are the truth; read models can be re-applied from them after a crash."""
    with fresh_container(tmp_path) as container:
        def setting(datastore: Any) -> str:
            with datastore.get_connection() as conn:
                row = conn.execute("SHOW synchronous_commit").fetchone()
            return str(row["synchronous_commit"])

        assert setting(container.store.recorder.datastore) == "on"
        assert {setting(v.datastore) for v in container.views.values()} == {"off"}


def test_which_aggregates_exist_and_attempts_counted_past_a_batch() -> None:
    with fresh_store() as store:
        made, never = Counter(), uuid4()
        store.save(made)
        assert store.created([made.id, never]) == {made.id}
        quiz_id, student_id = uuid4(), uuid4()
        store.save(*(Attempt(quiz_id=quiz_id, student_id=student_id, number=n,
                             question_order=[], option_order={}, deadline=None,
                             actor_id=student_id) for n in range(1, 23)))
        commands = QuizCommands(store, SystemClock(), LogAttemptIndex(store))
        assert commands.attempt_count(quiz_id, student_id) == 22
        assert commands.attempt_count(quiz_id, uuid4()) == 0
