"""Auditors' questions, answered from the log: an aggregate's history and past states."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from application.eventstore import EventStore
from domain.errors import NotFound
from domain.registry import AGGREGATES

# Fields that say why something happened, in the order they are looked for.
REASON_FIELDS = ("reason", "note", "feedback")


def plain(value: Any) -> Any:
    """A JSON-friendly copy: UUIDs and times as strings, sets sorted, enums by value."""
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((plain(v) for v in value), key=str)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def event_data(event: Any) -> dict[str, Any]:
    """The event's own fields, without the envelope the library adds."""
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
    return {k: plain(v) for k, v in vars(event).items() if k not in skip}


class AuditQueries:
    def __init__(self, store: EventStore) -> None:
        self.store = store

    def _events(self, aggregate_type: str, aggregate_id: UUID) -> list[Any]:
        cls = AGGREGATES.get(aggregate_type)
        if cls is None:
            raise NotFound(f"Unknown aggregate type '{aggregate_type}'",
                           code="UNKNOWN_AGGREGATE_TYPE", known=sorted(AGGREGATES))
        events = list(self.store.events.get(aggregate_id))
        if not events or getattr(events[0], "originator_topic", None) != get_topic(cls):
            raise NotFound(f"No {aggregate_type} with that id")
        return events

    def history(self, aggregate_type: str, aggregate_id: UUID) -> list[dict[str, Any]]:
        return [{
            "version": e.originator_version,
            "event": type(e).__name__,
            "at": e.timestamp.isoformat(),
            "actor_id": plain(getattr(e, "actor_id", None)),
            "reason": next((getattr(e, f) for f in REASON_FIELDS if getattr(e, f, None)), None),
            "data": event_data(e),
        } for e in self._events(aggregate_type, aggregate_id)]

    def state(self, aggregate_type: str, aggregate_id: UUID, version: int | None = None,
              at: datetime | None = None) -> dict[str, Any]:
        """The aggregate as it was at a version, or at a moment (the last event up to it)."""
        events = self._events(aggregate_type, aggregate_id)
        if at is not None:
            earlier = [e for e in events if e.timestamp <= at]
            if not earlier:
                raise NotFound(f"The {aggregate_type} did not exist yet at {at.isoformat()}",
                               code="NOT_YET_EXISTING")
            version = earlier[-1].originator_version
        if version is not None and not 1 <= version <= events[-1].originator_version:
            raise NotFound(f"No version {version}; the latest is "
                           f"{events[-1].originator_version}", code="NO_SUCH_VERSION")
        aggregate: Aggregate = self.store.repository.get(aggregate_id, version=version)
        state = {k: plain(v) for k, v in vars(aggregate).items() if not k.startswith("_")}
        last = events[aggregate.version - 1]
        return {"type": aggregate_type, "id": str(aggregate_id), "version": aggregate.version,
                "as_of": last.timestamp.isoformat(), "state": state}
