"""Deliveries already handled, per provider, so repeats are answered without work."""

from __future__ import annotations

from collections.abc import Callable

from psycopg_pool import ConnectionPool


class WebhookInbox:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def handled(self, provider: str, delivery_id: str) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT 1 FROM webhook_deliveries WHERE provider = %s AND "
                               "delivery_id = %s", (provider, delivery_id)).fetchone()
        return row is not None

    def receive(self, provider: str, delivery_id: str, kind: str,
                record: Callable[[], int]) -> int | None:
        """A delivery's effect, once: None for a repeat; else `record`'s log position (0:
        nothing changed), marked handled only after it is stored."""
        if self.handled(provider, delivery_id):
            return None
        position = record()
        self.mark(provider, delivery_id, kind)
        return position

    def mark(self, provider: str, delivery_id: str, kind: str) -> None:
        # Marked after the effect is stored: a crash in between means a redelivery is
        # processed again, which the aggregates make harmless.
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO webhook_deliveries (provider, delivery_id, kind) "
                         "VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                         (provider, delivery_id, kind))
