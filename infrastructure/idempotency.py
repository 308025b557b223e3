"""The first outcome of each command sent with an Idempotency-Key, kept for a day."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

KEEP_HOURS = 24
# A first request that never recorded its outcome (its process died) frees the key then.
STALE_MINUTES = 10
SWEEP_EVERY_SECONDS = 600.0
EXPIRED = (f"(created_at < now() - interval '{KEEP_HOURS} hours' OR (status IS NULL "
           f"AND created_at < now() - interval '{STALE_MINUTES} minutes'))")


@dataclass(frozen=True)
class Outcome:
    """What a key holds: `status` None while the first request is still running."""

    fingerprint: str
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes


class IdempotencyRecords:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self._swept = 0.0

    def reserve(self, subject: str, key: str, fingerprint: str) -> Outcome | None:
        """Take the key for this request (None), or what it already holds."""
        self._sweep()
        with self.pool.connection() as conn:
            while True:
                if conn.execute(
                        "INSERT INTO idempotency_keys (subject, key, fingerprint) "
                        "VALUES (%s, %s, %s) ON CONFLICT (subject, key) DO NOTHING "
                        "RETURNING 1", (subject, key, fingerprint)).fetchone():
                    return None
                row = conn.execute(
                    f"SELECT fingerprint, status, headers, body, {EXPIRED} AS expired "
                    "FROM idempotency_keys WHERE subject = %s AND key = %s",
                    (subject, key)).fetchone()
                if row is None:
                    continue  # completed with a 5xx and released just now
                values = _values(row, ("fingerprint", "status", "headers", "body", "expired"))
                if values["expired"]:
                    conn.execute("DELETE FROM idempotency_keys WHERE subject = %s "
                                 f"AND key = %s AND {EXPIRED}", (subject, key))
                    continue
                return Outcome(values["fingerprint"], values["status"],
                               [(str(k), str(v)) for k, v in values["headers"] or []],
                               bytes(values["body"] or b""))

    def complete(self, subject: str, key: str, status: int, headers: list[tuple[str, str]],
                 body: bytes, position: int | None) -> None:
        with self.pool.connection() as conn:
            conn.execute("UPDATE idempotency_keys SET status = %s, headers = %s, body = %s, "
                         "position = %s WHERE subject = %s AND key = %s",
                         (status, Jsonb(headers), body, position, subject, key))

    def release(self, subject: str, key: str) -> None:
        """Forget the key: the request failed without an outcome worth repeating."""
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE subject = %s AND key = %s "
                         "AND status IS NULL", (subject, key))

    def _sweep(self) -> None:
        now = time.monotonic()
        if now - self._swept < SWEEP_EVERY_SECONDS:
            return
        self._swept = now
        with self.pool.connection() as conn:
            conn.execute(f"DELETE FROM idempotency_keys WHERE {EXPIRED}")


def _values(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return dict(row) if isinstance(row, dict) else dict(zip(names, row, strict=True))
