"""Sending a replay batch's statements to PostgreSQL in one pipelined stream.

A replay produces thousands of short statements that mostly alternate (insert a row,
update it, insert the next...), so psycopg's executemany gets runs of one row and pays
a full send-and-wait cycle for each (measured: half of a rebuild's time). Here each
distinct statement is prepared once per batch, every row is dumped with psycopg's own
adapters and queued through libpq in pipeline mode, and the results are read back as
the server produces them; the prepared statements are closed at the end, so nothing
outlives the batch whatever else the connection does later.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any

from psycopg import Connection, errors, pq
from psycopg.abc import PQGen
from psycopg.adapt import PyFormat, Transformer
from psycopg.generators import pipeline_communicate
from psycopg.waiting import Ready, Wait

# Statements queued per libpq command: psycopg waits on the socket once per command.
CHUNK = 256
_PLACEHOLDER = re.compile(r"%s|%%")


def numbered(sql: str) -> bytes:
    """psycopg's positional %s placeholders as PostgreSQL's $1, $2..."""
    count = 0

    def number(match: re.Match[str]) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    return _PLACEHOLDER.sub(number, sql).encode()


def execute_pipelined(conn: Connection[Any],
                      statements: Iterable[tuple[str, Any]]) -> int:
    """Run the statements in order on `conn` (inside the caller's transaction); return
    how many ran. Raises the first statement's error, as psycopg would."""
    batch = _Batch(conn, iter(statements))
    pgconn = conn.pgconn
    nonblocking = pgconn.nonblocking
    pgconn.enter_pipeline_mode()
    pgconn.nonblocking = 1
    try:
        results = conn.wait(_until_synced(pgconn, batch.commands))
    finally:
        pgconn.nonblocking = nonblocking
        pgconn.exit_pipeline_mode()
    error: errors.Error | None = None
    for group in results:
        for result in group:
            if result.status == pq.ExecStatus.FATAL_ERROR and error is None:
                error = errors.error_from_result(result, encoding=conn.info.encoding)
    if error is None and batch.refused is not None:
        raise batch.refused  # the closes ran: nothing failed on the server
    # One result per prepare, statement and close, plus the sync: anything else means
    # results went missing, and the transaction must not be committed as if all ran.
    if error is None and (len(results) != batch.count + 2 * len(batch.names) + 1 or any(
            r.status == pq.ExecStatus.PIPELINE_ABORTED for g in results for r in g)):
        error = errors.InternalError("a pipelined batch lost results; nothing was applied")
    if error is not None:
        # After an error the pipeline skipped the closing too; prepared statements are
        # not transactional, so close them now (a protocol Close works even in a failed
        # transaction).
        for name in batch.names.values():
            pgconn.close_prepared(name)
        raise error
    return batch.count


class _Batch:
    """The commands for libpq, made a chunk at a time as the pipeline asks for them, so
    the server runs one chunk while the next is being dumped."""

    def __init__(self, conn: Connection[Any], statements: Iterator[tuple[str, Any]]) -> None:
        self.pgconn = conn.pgconn
        self.transformer = Transformer(conn)
        self.statements = statements
        self.names: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self.count = 0
        self.refused: Exception | None = None
        self.commands: deque[Callable[[], None]] = deque([self.send_chunk])

    def send_chunk(self) -> None:
        pgconn, transformer, names = self.pgconn, self.transformer, self.names
        for sql, params in islice(self.statements, CHUNK):
            try:
                values = transformer.dump_sequence(params, [PyFormat.AUTO] * len(params))
            except Exception as error:
                # A value the client cannot send (text holding NUL): end the pipeline
                # cleanly with what is queued, and raise it once the results are in.
                self.refused = error
                break
            key = (sql, tuple(transformer.types or ()))
            name = names.get(key)
            if name is None:
                name = names[key] = f"apranova_batch_{len(names)}".encode()
                pgconn.send_prepare(name, numbered(sql), param_types=key[1])
            pgconn.send_query_prepared(name, values, param_formats=list(transformer.formats or ()))
            self.count += 1
            if self.count % CHUNK == 0:
                self.commands.append(self.send_chunk)
                return
        for name in names.values():
            pgconn.send_close_prepared(name)
        pgconn.pipeline_sync()


def _until_synced(pgconn: pq.abc.PGconn,
                  commands: deque[Callable[[], None]]) -> PQGen[list[list[pq.abc.PGresult]]]:
    """Send every command, then read results until the final sync's has arrived."""
    results = yield from pipeline_communicate(pgconn, commands)
    group: list[pq.abc.PGresult] = []
    while not (results and results[-1][0].status == pq.ExecStatus.PIPELINE_SYNC):
        unsent = pgconn.flush()
        ready = yield (Wait.RW if unsent else Wait.R)
        if not ready & Ready.R:
            continue
        pgconn.consume_input()
        while not pgconn.is_busy():
            result = pgconn.get_result()
            if result is None:
                if not group:
                    break
                results.append(group)
                group = []
            elif result.status == pq.ExecStatus.PIPELINE_SYNC:
                results.append([result])
            else:
                group.append(result)
    return results
