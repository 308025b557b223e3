"""What every read model shares: its tables, exactly-once updates and read-your-writes waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed
from psycopg.types.json import Jsonb

from application.eventstore import APPLICATION_NAME
from projections.pipelined import execute_pipelined

EVENTS_TABLE = f"{APPLICATION_NAME}_events"

Statement = tuple[str, Sequence[Any] | dict[str, Any]]


class ProjectionLagging(TimeoutError):
    """The read model has not reached the requested position in time (HTTP 503)."""


class ReadModel(PostgresTrackingRecorder):
    """A tracking recorder that owns tables; view changes and tracking commit together."""

    ddl: ClassVar[str] = ""
    tables: ClassVar[tuple[str, ...]] = ()
    topics: ClassVar[tuple[str, ...]] = ()
    # Statements of the form "... SET col = col || %s WHERE id = %s" (a Jsonb object
    # merged into one row): consecutive ones for the same row are merged into one in a batch.
    merge_statements: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sql_create_statements.extend(
            # Composed, not SQL.format(): DDL may contain braces, as in DEFAULT '{}'.
            Composed([SQL(stmt)]) for stmt in self.ddl.split(";\n") if stmt.strip()
        )

    def apply(self, tracking: Tracking, statements: Iterable[Statement]) -> None:
        """Run the view's statements and record the tracking position in one transaction."""
        with self.datastore.transaction(commit=True) as curs:
            for sql, params in statements:
                curs.execute(sql, params)
            self._insert_tracking(curs, tracking)

    def apply_batch(self, tracking: Tracking, statements: Iterable[Statement]) -> None:
        """Like apply, for many events at once: one transaction, all statements pipelined
        in order, consecutive merge statements for the same row sent as one."""
        with self.datastore.transaction(commit=True) as curs:
            execute_pipelined(curs.connection, self._merged_runs(statements))
            self._insert_tracking(curs, tracking)

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
        past the end, which has no row to carry it."""
        params = {**params, "offset": offset, "limit": limit}
        rows = self.fetch_all(f"SELECT {columns}, count(*) OVER () AS total_rows FROM {source} "
                              f"WHERE {where} ORDER BY {order} "
                              "OFFSET %(offset)s LIMIT %(limit)s", params)
        if rows:
            total = int(rows[0]["total_rows"])
            for row in rows:
                del row["total_rows"]
            return total, rows
        count = self.fetch_one(f"SELECT count(*) AS n FROM {source} WHERE {where}", params)
        return (int(count["n"]) if count else 0), rows

    def position(self) -> int:
        return self.max_tracking_id(APPLICATION_NAME) or 0

    def has_reached(self, position: int) -> bool:
        """True when every event this model follows, up to `position`, has been applied.

        The model only tracks the events it subscribes to, so a position belonging to
        some other event counts as reached once no followed event lies before it.
        """
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                f"SELECT COALESCE(MAX(notification_id), 0) AS at FROM {self.tracking_table_name} "
                "WHERE application_name = %s",
                (APPLICATION_NAME,),
            ).fetchone()
            at = int(row["at"]) if row else 0
            if at >= position:
                return True
            pending = conn.execute(
                f"SELECT EXISTS (SELECT 1 FROM {EVENTS_TABLE} WHERE notification_id > %s "
                "AND notification_id <= %s AND topic = ANY(%s)) AS pending",
                (at, position, list(self.topics)),
            ).fetchone()
        return not (pending and pending["pending"])

    def wait_for(self, position: int | None, timeout: float) -> None:
        if not position:
            return
        deadline = time.monotonic() + timeout
        pause = 0.002
        while not self.has_reached(position):
            if time.monotonic() > deadline:
                raise ProjectionLagging(f"{type(self).__name__} has not reached {position}")
            time.sleep(pause)
            pause = min(pause * 2, 0.05)


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

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "view_class" in cls.__dict__:
            cls.topics = cls.view_class.topics

    def handlers(self) -> dict[type, Handler]:
        raise NotImplementedError

    def statements(self, domain_event: Any) -> Iterable[Statement]:
        table = self.__dict__.get("_handlers")
        if table is None:
            table = self.__dict__["_handlers"] = self.handlers()
        handler = table.get(type(domain_event))
        return handler(domain_event) if handler else ()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.apply(tracking, self.statements(domain_event))
