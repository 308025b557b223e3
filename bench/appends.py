"""Appends per second: the log's table-locked append against a watermark's append.

    python -m bench.appends [--writers 1,4,16] [--seconds 4] [--rounds 3]

Every append takes `LOCK TABLE ... IN EXCLUSIVE MODE` and announces itself (NOTIFY) in
its transaction (infrastructure/persistence.py, `LogRecorder.INSERT_LOCKED`), so appends
commit, and flush the WAL, one at a time, and commit order is position order ("locked").
The candidate ("new", `WATERMARKED` here) drops the table lock: as its transaction's first
write it takes its transaction id (`xid8`) and its positions under an advisory lock it
releases before committing, and announces after the commit (a NOTIFY inside takes the
server's one notification-queue lock through the WAL flush). Followers of such a log read
only events of transactions older than the oldest running, so that nothing appears behind
an event already read; bench/README.md says what that costs the readers and why the log
keeps its lock. Both appends run on one table in a fresh database on the machine's
PostgreSQL (APRANOVA_BENCH_ADMIN_URL), in alternating rounds of the same run.

Writers are processes, each with its own connection, so the client's GIL is not what is
measured; each append is one event of 400 bytes in a stream of its own (no conflicts).
Prints, last, `appends writers=<n> locked=<ev/s> new=<ev/s> ratio=<x>` per writer count
(medians of the rounds).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.composite import CompositeInfo, register_composite

from bench.commands import fresh_database
from infrastructure.persistence import LogRecorder, eventsourcing_env

STATE = b"x" * 400
TOPIC = "bench:Appended"
WATERMARKED = """
    CREATE FUNCTION bench_append_watermarked(events {event}[], request_id text)
    RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$
    DECLARE
        ids bigint[];
    BEGIN
        IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
            RAISE EXCEPTION 'an append must be the first write of its transaction';
        END IF;
        SET LOCAL lock_timeout = '5s';
        PERFORM pg_advisory_lock(7301);
        BEGIN
            PERFORM pg_current_xact_id();
            WITH inserted AS (
                INSERT INTO {table} (originator_id, originator_version, topic, state)
                SELECT originator_id, originator_version, topic, state FROM unnest(events)
                RETURNING notification_id)
            SELECT array_agg(notification_id ORDER BY notification_id) INTO ids
            FROM inserted;
        EXCEPTION WHEN query_canceled OR others THEN
            PERFORM pg_advisory_unlock(7301);  -- a session lock outlives the error
            RAISE;
        END;
        PERFORM pg_advisory_unlock(7301);
        RETURN QUERY SELECT unnest(ids);
    END;
    $BODY$"""


def prepare(url: str) -> tuple[list[str], list[str], str]:
    """The log's table and its locked append, and the watermark's append beside them;
    returns the statements of each append and the events' composite type."""
    from eventsourcing.postgres import PostgresFactory
    from eventsourcing.utils import Environment

    factory = PostgresFactory(Environment("apranova", eventsourcing_env(url)))
    recorder = factory.application_recorder()
    assert isinstance(recorder, LogRecorder)
    recorder.create_table()
    table, kind = recorder.events_table_name, recorder.stored_event_type_name
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN transaction_id xid8 NOT NULL "
                     "DEFAULT pg_current_xact_id()")
        conn.execute(WATERMARKED.format(event=kind, table=table))
        locked = [recorder.insert_locked.as_string(conn)]
    factory.close()
    return (locked, ["SELECT * FROM bench_append_watermarked(%s, %s)",
                     f"NOTIFY {recorder.channel_name}"], kind)


def writer(url: str, calls: list[str], kind: str, seconds: float, start: Any, out: Any
           ) -> None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        info = CompositeInfo.fetch(conn, kind)
        assert info is not None
        register_composite(info, conn)
        event = info.python_type
        assert event is not None
        start.wait()
        count, deadline = 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            conn.execute(calls[0], ([event(uuid.uuid4(), 1, TOPIC, STATE)], None),
                         prepare=True)
            for more in calls[1:]:  # the announcement after the commit
                conn.execute(more, prepare=True)
            count += 1
        out.put(count)


def rate(url: str, calls: list[str], kind: str, writers: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(url, calls, kind, seconds, start, out))
             for _ in range(writers)]
    for proc in procs:
        proc.start()
    time.sleep(1.0)  # every writer connected and prepared
    began = time.perf_counter()
    start.set()
    total = sum(out.get(timeout=seconds + 60) for _ in procs)
    elapsed = max(time.perf_counter() - began, seconds)
    for proc in procs:
        proc.join()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--writers", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.writers.split(",")]
    lines = []
    with fresh_database() as url:
        locked, new, kind = prepare(url)
        for writers in counts:
            rates: dict[str, list[float]] = {"locked": [], "new": []}
            for _ in range(args.rounds):
                for name, calls in (("locked", locked), ("new", new)):
                    rates[name].append(rate(url, calls, kind, writers, args.seconds))
            a, b = statistics.median(rates["locked"]), statistics.median(rates["new"])
            print(f"{writers} writers: locked {[round(x) for x in rates['locked']]}, "
                  f"new {[round(x) for x in rates['new']]}", flush=True)
            lines.append(f"appends writers={writers} locked={a:.0f} new={b:.0f} "
                         f"ratio={b / a:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
