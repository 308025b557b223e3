"""Pipelined replay statements: projections/pipelined.py (libpq's pipeline driven
through psycopg's internals) against psycopg's public pipeline with prepared statements,
the same statements on the same connection, alternating rounds, one run.

    python -m bench.pipeline [--rows 5000] [--rounds 5]

The statements have a replay's shape: insert a row, update it, insert the next. Prints
each way's median statements/s and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from bench.commands import fresh_database
from projections.pipelined import execute_pipelined

INSERT = "INSERT INTO rows (id, name, score) VALUES (%s, %s, %s)"
UPDATE = "UPDATE rows SET score = score + %s WHERE id = %s"


def statements(rows: int, offset: int) -> Iterable[tuple[str, Any]]:
    for i in range(offset, offset + rows):
        yield INSERT, (i, f"student {i}", 0)
        yield UPDATE, (1, i)


def public_pipeline(conn: psycopg.Connection[Any], batch: Iterable[tuple[str, Any]]) -> int:
    count = 0
    with conn.pipeline(), conn.cursor() as cur:
        for sql, params in batch:
            cur.execute(sql, params, prepare=True)
            count += 1
    return count


def timed(conn: psycopg.Connection[Any], run: Callable[..., int], rows: int,
          offset: int) -> float:
    with conn.transaction():
        started = time.perf_counter()
        count = run(conn, statements(rows, offset))
        took = time.perf_counter() - started
    return count / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ways: dict[str, Callable[..., int]] = {
        "internals (projections/pipelined.py)": execute_pipelined,
        "public conn.pipeline() + prepare=True": public_pipeline}
    rates: dict[str, list[float]] = {name: [] for name in ways}
    with fresh_database() as url, psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE rows (id bigint PRIMARY KEY, name text, score int)")
        conn.commit()
        offset = 0
        for _ in range(args.rounds):
            for name, run in ways.items():
                rates[name].append(timed(conn, run, args.rows, offset))
                offset += args.rows
    medians = {name: statistics.median(r) for name, r in rates.items()}
    for name, value in medians.items():
        print(f"{name}: {value:,.0f} statements/s")
    internals, public = medians.values()
    print(f"ratio internals / public: {internals / public:.2f}")


if __name__ == "__main__":
    main()
