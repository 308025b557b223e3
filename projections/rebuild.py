"""Replaying the log into read models: rebuild in place, or verify against a shadow copy.

Both build the model afresh in a schema of its own (a shadow), replaying events in
batches, one transaction and one pipelined round trip per batch. Rebuild then swaps
the shadow tables in under a lock; verify compares them with the live ones.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import InfrastructureFactory, Tracking
from eventsourcing.utils import Environment

from application.eventstore import APPLICATION_NAME, EventStore
from projections import stalls
from projections.base import Batch, ReadModel, ReadModelProjection, batches

BATCH = 5000
MAX_VERIFY_ROUNDS = 10
REPORT_ROWS = 20


@contextmanager
def shadow(env: dict[str, str], projection: type[ReadModelProjection]) -> Iterator[ReadModel]:
    """A fresh copy of the model's tables in a schema of its own, dropped afterwards."""
    schema = f"shadow_{projection.name}_{uuid.uuid4().hex[:8]}"
    factory = InfrastructureFactory[Any].construct(env=Environment(projection.name, {
        **env, "POSTGRES_SCHEMA": schema, "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": "1", "CREATE_TABLE": "n"}))
    view: ReadModel = factory.tracking_recorder(projection.view_class)
    # Unqualified names in the model's SQL then mean the shadow's tables.
    kwargs = view.datastore.pool.kwargs
    assert isinstance(kwargs, dict)
    kwargs["options"] = f"-c search_path={schema},public"
    with view.datastore.transaction(commit=True) as curs:
        curs.execute(f'CREATE SCHEMA "{schema}"')
    # Secondary indexes come after the replay: building them once is cheaper than
    # maintaining them through every replayed update.
    statements = view.sql_create_statements
    indexes = [s for s in statements if "CREATE INDEX" in s.as_string()]
    view.sql_create_statements = [s for s in statements if s not in indexes]
    view.create_table()
    view.sql_create_statements = statements
    # Unlogged while being filled: the replay writes no WAL; rebuild logs the finished
    # tables once before they take the live ones' place.
    with view.datastore.transaction(commit=True) as curs:
        for table in projection.view_class.tables:
            curs.execute(f'ALTER TABLE "{schema}".{table} SET UNLOGGED')
    view.pending_indexes = indexes  # type: ignore[attr-defined]
    try:
        yield view
    finally:
        with view.datastore.transaction(commit=True) as curs:
            curs.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        view.datastore.close()


def finish(view: ReadModel, tables: tuple[str, ...]) -> None:
    """Make a filled shadow durable and give it the secondary indexes it was built without."""
    with view.datastore.transaction(commit=True) as curs:
        for table in tables:
            curs.execute(f"ALTER TABLE {table} SET LOGGED")
        for statement in getattr(view, "pending_indexes", []):
            curs.execute(statement)
    view.pending_indexes = []  # type: ignore[attr-defined]


def replay(store: EventStore, projection: ReadModelProjection, until: int | None) -> int:
    """Apply the followed events after the view's position, up to `until`; return the count."""
    return replay_many(store, [projection], until)


def replay_many(store: EventStore, projections: list[ReadModelProjection],
                until: int | None) -> int:
    """Replay into several models in one pass over the log: each event is read and
    deserialised once, then each model gets its statements in one batch transaction.

    Reading and deserialising the next batch (client CPU) overlaps with the database
    applying the current one, on a second thread: measured, a third of a rebuild's time
    was otherwise spent waiting for the server."""
    positions = {p: p.view.position() for p in projections}
    topics = sorted({t for p in projections for t in p.topics})

    count = 0

    def runs() -> Iterator[list[Batch]]:
        nonlocal count
        start = min(positions.values(), default=0) + 1
        while run := store.recorder.select_notifications(start=start, limit=BATCH,
                                                         stop=until, topics=topics):
            events = [(n.id, n.topic, store.mapper.to_domain_event(n)) for n in run]
            work = batches(projections, positions, events)
            count += sum(len(b.events) for b in work)
            yield work
            start = run[-1].id + 1

    def apply(work: list[Batch]) -> None:
        for batch in work:
            batch.apply()

    with ThreadPoolExecutor(1, thread_name_prefix="replay") as writer:
        applying: Future[None] | None = None
        for work in runs():
            if applying is not None:
                applying.result()
            applying = writer.submit(apply, work)
        if applying is not None:
            applying.result()
    return count


class CannotReachHead(RuntimeError):
    """The model could not be brought to the head of the log (the CLI exits non-zero)."""


def _stall_of(live: ReadModel, projection: type[ReadModelProjection]) -> stalls.Stall | None:
    with live.datastore.get_connection() as conn:
        return next((s for s in stalls.current(conn) if s.model == projection.name), None)


def _replay_or_explain(store: EventStore, projection: ReadModelProjection,
                       until: int | None) -> int:
    try:
        return replay(store, projection, until)
    except Exception as error:
        at = projection.view.position()
        raise CannotReachHead(f"{projection.name}: the replay stopped after position {at}: "
                              f"{type(error).__name__}: {error}") from error


def rebuild(store: EventStore, env: dict[str, str], live: ReadModel,
            projection: type[ReadModelProjection]) -> int:
    """Replace the live model with a fresh replay of the log; return the events replayed.

    A model stalled at an event (see stalls.py) is rebuilt to the head of the log and its
    position moved there, so a rebuild gets it past the event once readers can apply it;
    a running model is rebuilt to its own position, which its runner carries on from."""
    with shadow(env, projection) as fresh:
        shadow_projection = projection(view=fresh)
        stalled = _stall_of(live, projection) is not None
        head = store.recorder.max_notification_id() or 0
        count = _replay_or_explain(store, shadow_projection, head if stalled else live.position())
        finish(fresh, projection.view_class.tables)
        schema = fresh.datastore.schema
        with live.datastore.transaction(commit=True) as curs:
            # Hold the live tables still while the shadow catches up and takes their place.
            tables = [*projection.view_class.tables, live.tracking_table_name]
            curs.execute("LOCK TABLE " + ", ".join(f"public.{t}" for t in tables)
                         + " IN ACCESS EXCLUSIVE MODE")
            curs.execute(f"SELECT max(notification_id) AS at FROM public.{live.tracking_table_name}"
                         " WHERE application_name = %s", (APPLICATION_NAME,))
            row = curs.fetchone()
            at = int(row["at"]) if row and row["at"] is not None else 0
            target = max(at, head) if stalled else at
            count += _replay_or_explain(store, shadow_projection, target)
            for table in projection.view_class.tables:
                curs.execute(f"DROP TABLE public.{table}")
                curs.execute(f'ALTER TABLE "{schema}".{table} SET SCHEMA public')
            if target > at:
                live._insert_tracking(curs, Tracking(APPLICATION_NAME, target))
            stalls.clear(curs, projection.name)
        return count


@dataclass
class Difference:
    table: str
    only_in_live: list[dict[str, Any]]
    only_in_rebuild: list[dict[str, Any]]


def verify(store: EventStore, env: dict[str, str], live: ReadModel,
           projection: type[ReadModelProjection], wait_seconds: float = 10.0
           ) -> list[Difference]:
    """Rebuild into a shadow and report every row that differs from the live model.

    Raises CannotReachHead when the replay fails, or when the live model has not applied
    every event it follows up to the head of the log (as verify started) within
    `wait_seconds`: rows that agree say nothing of a model that stopped."""
    head = store.recorder.max_notification_id() or 0
    deadline = time.monotonic() + wait_seconds
    while not live.has_reached(head):
        stall = _stall_of(live, projection)
        if stall or time.monotonic() > deadline:
            why = (f"stopped at position {stall.position} ({stall.topic}): {stall.error}"
                   if stall else "it is not keeping up (is a projector running?)")
            raise CannotReachHead(f"{projection.name}: the live model is at position "
                                  f"{live.position()}, the log's head at {head}; {why}")
        time.sleep(0.1)
    with shadow(env, projection) as fresh:
        shadow_projection = projection(view=fresh)
        covered = live.position()
        _replay_or_explain(store, shadow_projection, covered)
        finish(fresh, projection.view_class.tables)
        schema = fresh.datastore.schema
        for _ in range(MAX_VERIFY_ROUNDS):
            with live.datastore.get_connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                row = conn.execute(
                    f"SELECT max(notification_id) AS at FROM public.{live.tracking_table_name}"
                    " WHERE application_name = %s", (APPLICATION_NAME,)).fetchone()
                at = int(row["at"]) if row and row["at"] is not None else 0
                if at <= covered:
                    return [d for d in (_compare(conn, schema, t)
                                        for t in projection.view_class.tables) if d]
            _replay_or_explain(store, shadow_projection, at)
            covered = at
        raise RuntimeError("the live model kept moving; try again when it is quieter")


def _compare(conn: Any, schema: str, table: str) -> Difference | None:
    def rows(query: str) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(query + f" LIMIT {REPORT_ROWS}").fetchall()]

    live_only = rows(f'SELECT * FROM public.{table} EXCEPT ALL SELECT * FROM "{schema}".{table}')
    fresh_only = rows(f'SELECT * FROM "{schema}".{table} EXCEPT ALL SELECT * FROM public.{table}')
    if live_only or fresh_only:
        return Difference(table, live_only, fresh_only)
    return None

