"""Read models stopped at an event they could not apply: recorded where every process sees.

A stalled model keeps its position (skipping the event would make it wrong) and is
retried with a growing pause; meanwhile `/readyz`, `/metrics` and
`apranova projections status` show which model, at which event, and why. The row goes
when the model gets past the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from domain.text import storable

if TYPE_CHECKING:
    from projections.base import ReadModel

TABLE = "apranova_projection_stalls"
MAX_ERROR = 2000


@dataclass(frozen=True)
class Stall:
    model: str
    position: int
    topic: str
    error: str
    attempts: int
    since: datetime | None = None
    last_attempt: datetime | None = None


def record(conn: Any, stall: Stall) -> None:
    conn.execute(
        f"INSERT INTO {TABLE} (model, position, topic, error, attempts) "
        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (model) DO UPDATE SET "
        "position = EXCLUDED.position, topic = EXCLUDED.topic, error = EXCLUDED.error, "
        f"attempts = EXCLUDED.attempts, last_attempt = now(), since = CASE "
        f"WHEN {TABLE}.position = EXCLUDED.position THEN {TABLE}.since ELSE now() END",
        (stall.model, stall.position, stall.topic, storable(stall.error)[:MAX_ERROR],
         stall.attempts))


def clear(conn: Any, model: str) -> None:
    conn.execute(f"DELETE FROM {TABLE} WHERE model = %s", (model,))


def current(conn: Any) -> list[Stall]:
    """Every stalled model (none if the table does not exist yet)."""
    exists = conn.execute("SELECT to_regclass(%s) AS t", (TABLE,)).fetchone()
    if not exists or not _value(exists, "t"):
        return []
    rows = conn.execute(f"SELECT model, position, topic, error, attempts, since, last_attempt "
                        f"FROM {TABLE} ORDER BY model").fetchall()
    return [Stall(**(dict(r) if isinstance(r, dict) else dict(zip(
        ("model", "position", "topic", "error", "attempts", "since", "last_attempt"),
        r, strict=True)))) for r in rows]


@dataclass(frozen=True)
class ModelStatus:
    """One read model as operators see it: where it is, how far behind, and why stopped."""

    model: str
    position: int
    pending: int
    stall: Stall | None


def statuses(conn: Any, views: Mapping[str, ReadModel]) -> list[ModelStatus]:
    """Every read model's position, followed events not yet applied, and stall if any."""
    stalled = {s.model: s for s in current(conn)}
    return [ModelStatus(name, view.position(), view.pending(), stalled.get(name))
            for name, view in views.items()]


def _value(row: Any, key: str) -> Any:
    return row[key] if isinstance(row, dict) else row[0]
