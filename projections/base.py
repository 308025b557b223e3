"""What every read model shares: its tables, exactly-once updates and read-your-writes waits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, ClassVar, NamedTuple

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed
from psycopg.types.json import Jsonb

from application.eventstore import APPLICATION_NAME
from domain.text import storable
from projections.pipelined import execute_pipelined

EVENTS_TABLE = f"{APPLICATION_NAME}_events"
# Read models announce each committed position here ("<schema>.<tracking table>:<id>").
POSITIONS_CHANNEL = f"{APPLICATION_NAME}_read_models"

Statement = tuple[str, Sequence[Any] | dict[str, Any]]


class ProjectionLagging(TimeoutError):
    """The read model has not reached the requested position in time (HTTP 503)."""


class PositionBoard:
    """The read models' positions as their projector announced them, for one database.

    Read-your-writes waits block here instead of polling the tracking tables: under the
    1,000-user mix an answer's wait asked the database three or four times (two queries
    each) before its model had caught up. Until a listener hears the announcements
    (`listening`), or if one is lost, waits fall back to asking the database.

    Waits on the event loop (`wait_async`) hold no thread: with the projector stopped,
    threads held by waits starved commands that need no read model (answer saves fell
    from 168/s to 14.5/s). A model whose wait ran out without it moving is `lagging`
    until it announces progress (or `LAGGING_TRUST_SECONDS` pass), and waits on it give up
    at once instead of each waiting out the timeout.
    """

    LAGGING_TRUST_SECONDS: ClassVar[float] = 10.0

    def __init__(self) -> None:
        self._at: dict[str, int] = {}
        self._changed = threading.Condition()
        self._waiters: list[_Waiter] = []
        self._lagging: dict[str, float] = {}
        self.listening = False

    def heard(self, model: str) -> int:
        return self._at.get(model, 0)

    def announce(self, model: str, position: int) -> None:
        with self._changed:
            if position <= self._at.get(model, 0):
                return
            self._at[model] = position
            self._lagging.pop(model, None)
            self._changed.notify_all()
            ready = [w for w in self._waiters if w.model == model and w.position <= position]
            self._waiters = [w for w in self._waiters
                             if not (w.model == model and w.position <= position)]
        for waiter in ready:
            waiter.loop.call_soon_threadsafe(_resolve, waiter.future)

    def announce_payload(self, payload: str) -> None:
        model, _, position = payload.rpartition(":")
        if model and position.isdigit():
            self.announce(model, int(position))

    def wait(self, model: str, position: int, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._at.get(model, 0) >= position, timeout)

    async def wait_async(self, model: str, position: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(model, position, loop, loop.create_future())
        with self._changed:
            if self._at.get(model, 0) >= position:
                return True
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter.future, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._changed:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def log_grew(self) -> None:
        """The log took an append (its NOTIFY): wakes `wait_async(LOG, ...)`."""
        with self._changed:
            grown = self._at.get(LOG, 0) + 1
        self.announce(LOG, grown)

    async def next_change(self, key: str, seen: int, fallback: float, timeout: float
                          ) -> None:
        """Wait until `key` (a model, or LOG) moves past `seen` (`heard(key)` read before
        the caller last looked): woken by the announcement while this process hears them,
        else after `fallback`, as a poll would."""
        await self.wait_async(key, seen + 1, timeout if self.listening else fallback)

    def gave_up(self, model: str) -> None:
        """A wait on `model` ran out: later ones answer at once until it moves."""
        with self._changed:
            self._lagging[model] = time.monotonic() + self.LAGGING_TRUST_SECONDS

    def lagging(self, model: str) -> bool:
        until = self._lagging.get(model)
        return until is not None and time.monotonic() < until


class _Waiter(NamedTuple):
    model: str
    position: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# The board's key for the log itself: announced on each append's NOTIFY.
LOG = "__log__"


class ReadModel(PostgresTrackingRecorder):
    """A tracking recorder that owns tables; view changes and tracking commit together."""

    ddl: ClassVar[str] = ""
    tables: ClassVar[tuple[str, ...]] = ()
    topics: ClassVar[tuple[str, ...]] = ()
    # Statements of the form "... SET col = col || %s WHERE id = %s" (a Jsonb object
    # merged into one row): consecutive ones for the same row are merged into one in a batch.
    merge_statements: ClassVar[frozenset[str]] = frozenset()

    # How long a wait trusts announcements before asking the database again.
    RECHECK_SECONDS: ClassVar[float] = 0.2
    # How long a request waits for the model to include its position (settings).
    request_wait_seconds: float = 4.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.board = PositionBoard()  # the container gives views of one database one board
        self.sql_create_statements.extend(
            # Composed, not SQL.format(): DDL may contain braces, as in DEFAULT '{}'.
            Composed([SQL(stmt)]) for stmt in self.ddl.split(";\n") if stmt.strip()
        )

    def apply(self, tracking: Tracking, statements: Iterable[Statement]) -> None:
        """Run the view's statements and record the tracking position in one transaction,
        announcing the position (delivered on commit) to processes waiting for it."""
        with self.datastore.transaction(commit=True) as curs:
            for sql, params in statements:
                curs.execute(sql, params)
            self._insert_tracking(curs, tracking)
            self._announce(curs, tracking)

    def apply_batch(self, tracking: Tracking, statements: Iterable[Statement]) -> None:
        """Like apply, for many events at once: one transaction, all statements pipelined
        in order, consecutive merge statements for the same row sent as one."""
        with self.datastore.transaction(commit=True) as curs:
            execute_pipelined(curs.connection, self._merged_runs(statements))
            self._insert_tracking(curs, tracking)
            self._announce(curs, tracking)

    @property
    def position_key(self) -> str:
        """What its positions are announced under: a rebuild's shadow copy, in a schema
        of its own, must never answer for the live model."""
        return f"{self.datastore.schema}.{self.tracking_table_name}"

    def _announce(self, curs: Any, tracking: Tracking) -> None:
        curs.execute("SELECT pg_notify(%s, %s)", (
            POSITIONS_CHANNEL, f"{self.position_key}:{tracking.notification_id}"))

    def _merged_runs(self, statements: Iterable[Statement]) -> Iterator[Statement]:
        for sql, run in groupby(statements, key=itemgetter(0)):
            if sql in self.merge_statements:
                yield from ((sql, params) for params in _merged([p for _, p in run]))
            else:
                yield from run

    def fetch_all(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[DictRow]:
        with self.datastore.get_connection() as conn:
            return conn.execute(sql, params).fetchall()

    def fetch_one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> DictRow | None:
        with self.datastore.get_connection() as conn:
            return conn.execute(sql, params).fetchone()

    def page_of(self, source: str, columns: str, where: str, params: dict[str, Any],
                order: str, offset: int, limit: int) -> tuple[int, list[DictRow]]:
        """One page of rows and the total count, for the {count, next, previous, results}
        lists: one query, the count riding along as a window; a second only for a page
        past the end, which has no row to carry it (an empty first page needs none)."""
        params = {**params, "offset": offset, "limit": limit}
        rows = self.fetch_all(f"SELECT {columns}, count(*) OVER () AS total_rows FROM {source} "
                              f"WHERE {where} ORDER BY {order} "
                              "OFFSET %(offset)s LIMIT %(limit)s", params)
        if rows:
            total = int(rows[0]["total_rows"])
            for row in rows:
                del row["total_rows"]
            return total, rows
        if offset == 0:
            return 0, rows
        count = self.fetch_one(f"SELECT count(*) AS n FROM {source} WHERE {where}", params)
        return (int(count["n"]) if count else 0), rows

    def position(self) -> int:
        return self.max_tracking_id(APPLICATION_NAME) or 0

    def has_reached(self, position: int) -> bool:
        """True when every event this model follows, up to `position`, has been applied.

        The model only tracks the events it subscribes to, so a position belonging to
        some other event counts as reached once no followed event lies before it.
        """
        return self._last_unapplied(position) == 0

    def _last_unapplied(self, position: int) -> int:
        """The last followed event up to `position` that the model has not applied; 0 if
        none (one query: the tracking position, then the log from there)."""
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                f"WITH at AS (SELECT COALESCE(MAX(notification_id), 0) AS at "
                f"FROM {self.tracking_table_name} WHERE application_name = %s) "
                f"SELECT COALESCE((SELECT MAX(notification_id) FROM {EVENTS_TABLE}, at "
                "WHERE notification_id > at.at AND notification_id <= %s "
                "AND topic = ANY(%s)), 0) AS last",
                (APPLICATION_NAME, position, list(self.topics)),
            ).fetchone()
        return int(row["last"]) if row else 0

    def pending(self) -> int:
        """How many followed events the log holds past this model's position."""
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                f"SELECT count(*) AS n FROM {EVENTS_TABLE} WHERE notification_id > "
                f"(SELECT COALESCE(MAX(notification_id), 0) FROM {self.tracking_table_name} "
                "WHERE application_name = %s) AND topic = ANY(%s)",
                (APPLICATION_NAME, list(self.topics))).fetchone()
        return int(row["n"]) if row else 0

    def catch_up(self, position: int | None) -> None:
        """A request's wait for `position`: `wait_for` for `request_wait_seconds`, except
        that while the model is known to lag it gives up at once (see PositionBoard)."""
        self._wait(position, self.request_wait_seconds, give_up_early=True)

    def wait_for(self, position: int | None, timeout: float) -> None:
        """Return once the model includes `position`: on the projector's announcement when
        this process listens for them, asking the database now and then in case one was
        lost; by asking the database, with growing pauses, when it doesn't."""
        self._wait(position, timeout, give_up_early=False)

    def _wait(self, position: int | None, timeout: float, give_up_early: bool) -> None:
        name = self.position_key
        if not position or self.board.heard(name) >= position:
            return
        if give_up_early and self.board.lagging(name) and self._last_unapplied(position):
            raise ProjectionLagging(f"{type(self).__name__} has not reached {position}")
        deadline = time.monotonic() + timeout
        pause = 0.002
        while target := self._last_unapplied(position):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.board.gave_up(name)
                raise ProjectionLagging(f"{type(self).__name__} has not reached {position}")
            wait = min(remaining, self.RECHECK_SECONDS if self.board.listening else pause)
            if self.board.wait(name, target, wait):
                return
            pause = min(pause * 2, 0.05)

    async def includes(self, position: int | None) -> bool:
        """Whether the model includes `position` within `request_wait_seconds`: `catch_up`
        on the event loop, holding a thread only for its queries."""
        timeout = self.request_wait_seconds
        name = self.position_key
        if not position or self.board.heard(name) >= position:
            return True
        if self.board.lagging(name):
            return not await asyncio.to_thread(self._last_unapplied, position)
        deadline = time.monotonic() + timeout
        pause = 0.002
        while target := await asyncio.to_thread(self._last_unapplied, position):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.board.gave_up(name)
                return False
            wait = min(remaining, self.RECHECK_SECONDS if self.board.listening else pause)
            if await self.board.wait_async(name, target, wait):
                return True
            pause = min(pause * 2, 0.05)
        return True


def _merged(rows: list[Any]) -> list[Any]:
    """Merge consecutive (Jsonb object, row id) parameters for the same row, in order."""
    out: list[Any] = []
    for document, row_id in rows:
        if out and out[-1][1] == row_id:
            out[-1] = (Jsonb({**out[-1][0].obj, **document.obj}), row_id)
        else:
            out.append((document, row_id))
    return out


Handler = Callable[[Any], Iterable[Statement]]


def row_update(table: str, e: Any, assignments: str, *params: Any) -> Statement:
    """An UPDATE of the row of the event's aggregate, stamping updated_at with its time."""
    return (f"UPDATE {table} SET {assignments}, updated_at = %s WHERE id = %s",
            (*params, e.timestamp, e.originator_id))


class ReadModelProjection(Projection[Any]):
    """Base for projections: a handler per event class turns the event into SQL statements.

    The statements and the tracking position commit together, so each event is applied
    exactly once however often the runner restarts.
    """

    view_class: ClassVar[type[ReadModel]]
    followed: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "view_class" in cls.__dict__:
            cls.topics = cls.view_class.topics
            cls.followed = frozenset(cls.topics)

    def handlers(self) -> dict[type, Handler]:
        raise NotImplementedError

    def statements(self, domain_event: Any) -> Iterable[Statement]:
        if isinstance(domain_event, Undecodable):
            raise domain_event.error
        table = self.__dict__.get("_handlers")
        if table is None:
            table = self.__dict__["_handlers"] = self.handlers()
        handler = table.get(type(domain_event))
        return handler(domain_event) if handler else ()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(tracking, self.statements(domain_event))


class Undecodable(NamedTuple):
    """A logged event that could not be turned back into a domain event: every model
    that follows its topic stops at it, as at an event it cannot apply."""

    error: Exception


# What PostgreSQL or the driver raise for text they cannot hold (NUL, lone surrogates);
# the library's datastore re-raises the driver's as its own.
UNSTORABLE_ERRORS = (psycopg.DataError, persistence.DataError, UnicodeEncodeError)


def _storable_param(value: Any) -> Any:
    if isinstance(value, Jsonb):
        return Jsonb(storable(value.obj))
    if isinstance(value, dict):
        return {k: _storable_param(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_storable_param(v) for v in value)
    return storable(value)


def storable_statements(statements: Iterable[Statement]) -> list[Statement]:
    """The statements with unstorable characters in their parameters replaced by U+FFFD."""
    return [(sql, _storable_param(params)) for sql, params in statements]


class Batch(NamedTuple):
    """One model's share of a run of events: applied in one transaction."""

    projection: ReadModelProjection
    position: int
    events: list[tuple[int, Any]]

    def apply(self) -> None:
        """Apply the events and record the position; an event holding text recorded
        before the boundary refused it is stored with U+FFFD in its place, the same on
        every replay, so a rebuild or verify agrees with the live model."""
        statements = [s for _, e in self.events for s in self.projection.statements(e)]
        try:
            self._apply(statements)
        except UNSTORABLE_ERRORS:
            self._apply(storable_statements(statements))

    def _apply(self, statements: list[Statement]) -> None:
        view = self.projection.view
        tracking = Tracking(APPLICATION_NAME, self.position)
        # A lone event's few statements gain nothing from a pipeline's prepare and close.
        (view.apply if len(self.events) == 1 else view.apply_batch)(tracking, statements)

    def apply_each(self) -> tuple[int, Any, Exception] | None:
        """Apply the events one by one, to find the one that fails: what was applied
        before it stays; returns (position, event, error) of the failing one, if any."""
        for position, event in self.events:
            try:
                Batch(self.projection, position, [(position, event)]).apply()
            except Exception as error:
                return position, event, error
        return None


def batches(projections: Sequence[ReadModelProjection], positions: dict[Any, int],
            events: Sequence[tuple[int, str, Any]]) -> list[Batch]:
    """Each model's batch of the (notification id, topic, event) run: the events it
    follows past its position. `positions` is advanced to what the batches will record."""
    out: list[Batch] = []
    for projection in projections:
        followed, at = projection.followed, positions[projection]
        mine = [(i, e) for i, topic, e in events if topic in followed and i > at]
        if mine:
            positions[projection] = mine[-1][0]
            out.append(Batch(projection, mine[-1][0], mine))
    return out
