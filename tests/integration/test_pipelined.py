"""Pipelined batches on the real PostgreSQL: order, types, errors, nothing left behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import uuid4

import psycopg
import pytest
from psycopg.types.json import Jsonb

from projections.pipelined import CHUNK, execute_pipelined, numbered
from tests.conftest import new_database

INSERT = "INSERT INTO t (id, n, at, doc, tags) VALUES (%s, %s, %s, %s, %s)"
BUMP = "UPDATE t SET n = n + %s, doc = doc || %s WHERE id = %s"


@pytest.fixture
def conn() -> Iterator[psycopg.Connection]:
    with new_database() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id uuid PRIMARY KEY, n bigint NOT NULL, "
                     "at timestamptz, doc jsonb NOT NULL, tags text[] NOT NULL)")
        yield conn


def test_placeholders_are_numbered_and_percent_signs_kept() -> None:
    assert numbered("SELECT %s, '100%%', %s") == b"SELECT $1, '100%', $2"


def test_many_interleaved_statements_apply_in_order(conn: psycopg.Connection) -> None:
    rows = [uuid4() for _ in range(3 * CHUNK)]  # several chunks
    statements = []
    for i, row in enumerate(rows):
        # Values that psycopg types differently (small and big ints, None and a time) make
        # one statement text need several prepared statements.
        at = datetime(2026, 1, 1, tzinfo=UTC) if i % 2 else None
        statements.append((INSERT, (row, i, at, Jsonb({"i": i}), [f"t{i}"])))
        statements.append((BUMP, (2**40 if i % 3 == 0 else 1, Jsonb({"b": i}), row)))
    with conn.transaction():
        assert execute_pipelined(conn, statements) == len(statements)
    got = {r[0]: r[1:] for r in conn.execute("SELECT id, n, doc, tags, at FROM t")}
    assert len(got) == len(rows)
    for i, row in enumerate(rows):
        n, doc, tags, at = got[row]
        assert n == i + (2**40 if i % 3 == 0 else 1)
        assert doc == {"i": i, "b": i} and tags == [f"t{i}"]
        assert (at is None) == (i % 2 == 0)
    # The batch's prepared statements are closed with it.
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)


def test_a_failing_statement_raises_and_the_transaction_keeps_nothing(
    conn: psycopg.Connection,
) -> None:
    row = uuid4()
    statements = [(INSERT, (uuid4(), i, None, Jsonb({}), [])) for i in range(CHUNK + 5)]
    statements.insert(10, (INSERT, (row, 1, None, Jsonb({}), [])))
    statements.insert(CHUNK, (INSERT, (row, 2, None, Jsonb({}), [])))  # duplicate key
    with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
        execute_pipelined(conn, statements)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
    # The connection is usable afterwards, in and out of pipelines.
    with conn.transaction():
        execute_pipelined(conn, [(INSERT, (row, 3, None, Jsonb({}), []))])
    assert conn.execute("SELECT n FROM t WHERE id = %s", (row,)).fetchone() == (3,)


def test_an_empty_batch_is_a_no_op(conn: psycopg.Connection) -> None:
    with conn.transaction():
        assert execute_pipelined(conn, []) == 0
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
