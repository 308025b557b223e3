"""Where the event store and read models live: one mapping from settings to the library's env."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

from eventsourcing.persistence import (
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, retry
from psycopg.conninfo import conninfo_to_dict
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from infrastructure.logs import REQUEST_ID

EVENT_REQUESTS_TABLE = "apranova_event_requests"


class LogRecorder(PostgresApplicationRecorder):
    """The library's recorder, finding where a reading by event type starts by index.

    Followers (the relay, the projections, analysts filtering by type) read "events after
    my position, of my types". A follower's position only moves on events it wants, and
    every new event wakes it, so the library's scan in log order re-read everything since
    its last wanted event on each wake-up: the relay, which wants no attempt traffic, spent a
    third of a core on it under the 1,000-user load. Here a (topic, notification_id) index
    first finds the earliest wanted event (one short probe per type); the library's scan
    starts there, or doesn't run when there is none. An index alone was not enough: the
    planner kept the log-order scan for the prepared query, hence the probe's row
    comparisons, which only it can use.

    The probe runs for readers whose last reading found nothing (the relay, mostly): a
    reader that keeps finding events (the projections, a rebuild) scans as before, since
    a probe per wake-up of the projections' forty types cost more than it saved.
    """

    FIRST_WANTED = """
        SELECT min(first.notification_id) AS first
        FROM unnest(%(topics)s::text[]) AS t(topic) CROSS JOIN LATERAL (
            SELECT notification_id FROM {schema}.{table}
            WHERE topic = t.topic AND (topic, notification_id) > (t.topic, %(after)s)
              AND (topic, notification_id) <= (t.topic, %(upto)s)
            ORDER BY topic, notification_id LIMIT 1) AS first"""

    # Appending takes one statement: this function locks the table, announces, inserts and
    # returns the new notification ids. Called in autocommit, it is its own transaction and
    # holds the lock until it commits, so insert order is commit order, as in the library's
    # pipelined transaction (lock, notify, insert, sync, commit), which cost a third of an
    # answer save's Python time. The library's own insert function takes no lock.
    INSERT_LOCKED = """
        CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event}[],
                                                       request_id text)
        RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$
        DECLARE
            ids bigint[];
        BEGIN
            SET LOCAL lock_timeout = '{lock_timeout}s';
            LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;
            NOTIFY {channel};
            WITH inserted AS (
                INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)
                SELECT originator_id, originator_version, topic, state FROM unnest(events)
                RETURNING notification_id)
            SELECT array_agg(notification_id ORDER BY notification_id) INTO ids
            FROM inserted;
            IF request_id IS NOT NULL THEN
                INSERT INTO {schema}.{requests} (position, request_id)
                SELECT unnest(ids), request_id;
            END IF;
            RETURN QUERY SELECT unnest(ids);
        END;
        $BODY$"""
    # Which request stored each event, so the process managers' log lines carry its id
    # (infrastructure.logs); kept a day. Written by the append itself: no round trip more.
    REQUESTS_TABLE = """
        CREATE TABLE IF NOT EXISTS {schema}.{requests} (
            position bigint PRIMARY KEY,
            request_id text NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now())"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = Identifier(self.events_table_name)
        schema = Identifier(self.datastore.schema)
        function = Identifier(f"{self.channel_name}_insert_locked")
        requests = Identifier(EVENT_REQUESTS_TABLE)
        self.sql_create_statements.append(SQL(self.REQUESTS_TABLE).format(
            schema=schema, requests=requests))
        self.sql_create_statements.append(SQL(self.INSERT_LOCKED).format(
            schema=schema, function=function, table=table, requests=requests,
            event=Identifier(self.stored_event_type_name),
            channel=Identifier(self.channel_name), lock_timeout=self.datastore.lock_timeout))
        self.insert_locked = SQL(
            "SELECT notification_id FROM {schema}.{function}(%s, %s) AS notification_id"
        ).format(schema=schema, function=function)
        self.sql_create_statements.append(SQL(
            "CREATE INDEX IF NOT EXISTS {index} ON {schema}.{table} (topic, notification_id)"
        ).format(index=Identifier(f"{self.events_table_name}_topic_idx"), schema=schema,
                 table=table))
        self.first_wanted = SQL(self.FIRST_WANTED).format(schema=schema, table=table)
        self._found_nothing: dict[frozenset[str], bool] = {}

    def latest(self, aggregate_id: UUID) -> tuple[int, int] | None:
        """(version, log position) of the aggregate's latest event: application.LogIndex."""
        rows = self._log("SELECT originator_version, notification_id FROM {log} "
                         "WHERE originator_id = %s ORDER BY originator_version DESC LIMIT 1",
                         (aggregate_id,))
        return (rows[0]["originator_version"], rows[0]["notification_id"]) if rows else None

    def created(self, aggregate_ids: Sequence[UUID]) -> set[UUID]:
        rows = self._log("SELECT originator_id FROM {log} WHERE originator_id = ANY(%s) "
                         "AND originator_version = 1", (list(aggregate_ids),))
        return {row["originator_id"] for row in rows}

    def _log(self, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
        """Rows of a query on the event log table (`{log}` in `sql`)."""
        with self.datastore.get_connection() as conn:
            rows: list[dict[str, Any]] = conn.execute(
                sql.format(log=self.events_table_name), params).fetchall()
        return rows

    # Retried once: a connection broken by a restart fails, the next is new. More tries
    # only hold the request through an outage (each waits for a connection).
    @retry((InterfaceError, OperationalError), max_attempts=2, wait=0.1)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any
                      ) -> Sequence[int] | None:
        if not stored_events or any(value is not None for value in kwargs.values()):
            # A tracking record rides in the library's transaction with the events.
            return super().insert_events(stored_events, **kwargs)
        events = [self.construct_pg_stored_event(e.originator_id, e.originator_version,
                                                 e.topic, e.state) for e in stored_events]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            rows = curs.execute(self.insert_locked, (events, REQUEST_ID.get()),
                                prepare=True).fetchall()
        return [row["notification_id"] for row in rows]  # the library checks the count

    @retry((InterfaceError, OperationalError), max_attempts=2, wait=0.1)
    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), *, inclusive_of_start: bool = True
                             ) -> Sequence[Notification]:
        reader = frozenset(topics)
        if topics and self._found_nothing.get(reader, True):
            after = -1 if start is None else start - 1 if inclusive_of_start else start
            params = {"topics": list(reader), "after": after,
                      "upto": 2**63 - 1 if stop is None else stop}
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                row = curs.execute(self.first_wanted, params, prepare=True).fetchone()
            if row is None or row["first"] is None:
                return []
            start, inclusive_of_start = row["first"], True
        found = super().select_notifications(start, limit, stop, topics,
                                             inclusive_of_start=inclusive_of_start)
        if topics:
            if len(self._found_nothing) > 256:  # analysts' type filters vary; stay small
                self._found_nothing.clear()
            self._found_nothing[reader] = not found
        return found


EVENTSOURCING_DEFAULTS = {
    "PERSISTENCE_MODULE": "eventsourcing.postgres",
    # Off, on purpose: the library's insert function skips the table lock that makes
    # notification ids commit in order, so concurrent writers can leave gaps that a
    # subscriber (projections, the relay) passes over and never fills (measured: 4-10 of
    # 4,800 events missed with 8 writers; none with the lock). `LogRecorder` appends
    # through a function of its own that takes the lock.
    "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    # How long a request waits for a pooled connection (the library's name for it): an
    # unreachable database answers 503 after this, not after the outage.
    "POSTGRES_CONNECT_TIMEOUT": "2",
    # A finite lock timeout, so a stuck writer fails a request instead of hanging it.
    "POSTGRES_LOCK_TIMEOUT": "5",
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
    # No ping on every checkout (a round trip per command); `check_after_idle` pings only
    # connections that sat unused, which is where a database restart leaves broken ones.
    "POSTGRES_PRE_PING": "n",
    # Aggregates are cached and fast-forwarded with the events stored since (one indexed
    # query, usually empty), instead of replayed whole on every command: an attempt
    # gathers an event per saved answer, and every answer also reads its quiz.
    # Commands get a deep copy, so a rejected command leaves the cache untouched.
    "AGGREGATE_CACHE_MAXSIZE": "10000",
    "AGGREGATE_CACHE_FASTFORWARD": "y",
    "APPLICATION_RECORDER_TOPIC": get_topic(LogRecorder),
}


def eventsourcing_env(database_url: str, pool_size: int = 10) -> dict[str, str]:
    """Translate a PostgreSQL URL into the eventsourcing library's POSTGRES_* variables.

    The library opens POSTGRES_POOL_SIZE connections up front and grows by
    POSTGRES_MAX_OVERFLOW under load; several pools live in one process, so keep the
    standing part small and let load decide.
    """
    parts = conninfo_to_dict(database_url)
    env = dict(EVENTSOURCING_DEFAULTS)
    env.update({
        "POSTGRES_DBNAME": str(parts.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(parts.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(parts.get("port") or "5432"),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": str(max(pool_size - 2, 0)),
    })
    return env


# Connections opened for a burst are closed after this much idleness, so a quiet
# process holds few connections (PostgreSQL's default limit is 100 for everyone).
MAX_IDLE_SECONDS = 30.0


# A pooled connection unused for longer than this is pinged before use; one in steady
# use is not (the ping is a round trip).
IDLE_CHECK_SECONDS = 1.0
# libpq's own bound on opening a connection (its minimum is 2 s): a paused server
# accepts the TCP connection and then never answers.
CONNECT_TIMEOUT_SECONDS = 2


def check_after_idle(*pools: ConnectionPool) -> None:
    """Detect broken pooled connections before use (seen: one failed a request 70 s after
    an outage ended), and bound how long opening one may hang.

    Must run before a pool is first opened."""
    for pool in pools:
        returned: WeakKeyDictionary[Any, float] = WeakKeyDictionary()
        given_reset = pool._reset

        def reset(conn: Any, given: Any = given_reset,
                  returned: WeakKeyDictionary[Any, float] = returned) -> None:
            if given is not None:
                given(conn)
            returned[conn] = time.monotonic()

        def check(conn: Any, returned: WeakKeyDictionary[Any, float] = returned,
                  pool: ConnectionPool = pool) -> None:
            if time.monotonic() - returned.get(conn, 0.0) <= IDLE_CHECK_SECONDS:
                return
            try:
                ConnectionPool.check_connection(conn)
            except Exception:
                # The pool waits about a second after each failed check; the others that
                # sat idle through the same outage are broken too, so they are all checked
                # (and replaced) now, and the next try gets a good one.
                pool.check()
                raise

        pool._reset = reset
        pool._check = check
        if isinstance(pool.kwargs, dict):
            pool.kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)


def tune_pools(*pools: Any) -> None:
    """Shrink pools back soon after a burst (psycopg_pool keeps them 10 minutes by
    default), and `check_after_idle`.

    Must run before a pool is first opened: the shrink schedule is set at open.
    """
    for pool in pools:
        pool.max_idle = MAX_IDLE_SECONDS
    check_after_idle(*pools)


class LogAttemptIndex:
    """application.AttemptIndex from the log: the attempts started on a quiz, found among
    the Started events by the (topic, notification_id) index."""

    PAGE = 500

    def __init__(self, store: Any) -> None:
        self.store = store

    def attempts_of(self, quiz_id: UUID) -> list[UUID]:
        from domain.quizzes import Attempt

        topic = get_topic(Attempt.Started)
        ids: list[UUID] = []
        start = 1
        while True:
            batch = self.store.recorder.select_notifications(start=start, limit=self.PAGE,
                                                             topics=[topic])
            for notification in batch:
                started = self.store.mapper.to_domain_event(notification)
                if isinstance(started, Attempt.Started) and started.quiz_id == quiz_id:
                    ids.append(started.originator_id)
            if len(batch) < self.PAGE:
                return ids
            start = batch[-1].id + 1


class LogEvents:
    """application.LogReader: the log in order, decoded through the store's mapper (so
    personal fields read as their person's key allows)."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def events(self, after: int, limit: int) -> list[tuple[int, Any]]:
        batch = self.store.recorder.select_notifications(start=after + 1, limit=limit)
        return [(n.id, self.store.mapper.to_domain_event(n)) for n in batch]

    def unsealed(self, streams: Sequence[UUID]) -> int:
        from application.sealing import plaintext_fields

        transcoder = self.store.mapper.transcoder
        return sum(len(plaintext_fields(stored.topic, transcoder.decode(stored.state)))
                   for stream in streams for stored in self.store.recorder.select_events(stream))
