"""The one event-sourced application: one name, one events table, one global order."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording

from domain.errors import Conflict, NotFound

APPLICATION_NAME = "apranova"

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
_jitter = random.Random()  # our own generator: the global one belongs to whoever seeds it


class EventStore(Application[UUID]):
    name = APPLICATION_NAME
    is_snapshotting_enabled = False

    def load(self, cls: type[A], aggregate_id: UUID, what: str = "Object") -> A:
        """Get an aggregate of the given class or raise NotFound."""
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{what} not found") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"{what} not found")
        return aggregate

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, cls) else None

    def commit(self, *aggregates: Aggregate | None) -> int:
        """Save atomically; return the log position of the last event (0 if none)."""
        recordings: Sequence[Recording[Any]] = self.save(*aggregates)
        return max((r.notification.id for r in recordings), default=0)


def retry_on_conflict(
    command: Callable[[], T], *, deadline_seconds: float = 10.0
) -> T:
    """Run a load-decide-save command again when a concurrent writer got there first.

    Optimistic concurrency turns a race into an IntegrityError; re-running the whole
    command re-reads the state, so rules (like trainer capacity) are re-checked.
    """
    give_up = time.monotonic() + deadline_seconds
    backoff = 0.002
    while True:
        try:
            return command()
        except IntegrityError:
            if time.monotonic() > give_up:
                raise Conflict(
                    "Too many concurrent changes, try again", code="CONCURRENT_MODIFICATION"
                ) from None
            time.sleep(_jitter.uniform(0, backoff))
            backoff = min(backoff * 2, 0.1)
