"""The one event-sourced application: one name, one events table, one global order."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, Recording

from application.ports import LogIndex, PersonalCipher
from application.sealing import PersonalDataMapper, recording, subjects
from domain.errors import Conflict, NotFound
from domain.text import require_storable

APPLICATION_NAME = "apranova"

T = TypeVar("T")
A = TypeVar("A", bound=Aggregate)
_jitter = random.Random()  # our own generator: the global one belongs to whoever seeds it


READ_ONLY_CACHE_SIZE = 1000


class EventStore(Application[UUID]):
    name = APPLICATION_NAME
    is_snapshotting_enabled = False

    def __init__(self, env: Mapping[str, str] | None = None,
                 cipher: PersonalCipher | None = None) -> None:
        # Read by construct_mapper, which the library's constructor calls.
        self._cipher = cipher
        super().__init__(env)
        self._read_only: LRUCache[UUID, Aggregate] = LRUCache(maxsize=READ_ONLY_CACHE_SIZE)
        # Asked once: a check against a runtime protocol costs microseconds, and every
        # answer save consults its quiz through `_latest`.
        self._index: LogIndex | None = (self.recorder if isinstance(self.recorder, LogIndex)
                                        else None)

    def construct_mapper(self) -> Mapper[UUID]:
        if self._cipher is None:  # tests of rules that don't concern personal data
            return super().construct_mapper()
        return PersonalDataMapper(self._cipher, transcoder=self.construct_transcoder())

    def forget_cached(self) -> None:
        """Drop every cached aggregate: after an erasure, none may keep what it held."""
        # A new cache each: the library's LRUCache.clear() resets its order, not its entries.
        if isinstance(self.repository.cache, LRUCache):
            self.repository.cache = LRUCache(maxsize=self.repository.cache.maxsize)
        self._read_only = LRUCache(maxsize=READ_ONLY_CACHE_SIZE)

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

    def find_read_only(self, cls: type[A], aggregate_id: UUID) -> A | None:
        """The aggregate's current state, for reading only: it is shared between threads,
        so it must never be changed.

        Commands that only consult an aggregate (every answer consults its quiz) would
        otherwise pay for a deep copy of the cached one. Here one indexed query finds
        the latest version; an aggregate is rebuilt from its events, privately, only
        when that version is new, so no reader sees a half-applied change.
        """
        latest = self._latest(aggregate_id)
        if latest is None:
            return None
        version = latest["originator_version"]
        try:
            aggregate = self._read_only.get(aggregate_id)
        except KeyError:
            aggregate = None
        if aggregate is None or aggregate.version != version:
            try:
                aggregate = self.repository.get(aggregate_id, version=version)
            except AggregateNotFoundError:
                return None
            self._read_only.put(aggregate_id, aggregate)
        return aggregate if isinstance(aggregate, cls) else None

    def position_of(self, aggregate_id: UUID) -> int:
        """The log position of the aggregate's latest event (0 if it has none): what a
        reader waits for to see it, which under load is far sooner than the log's head."""
        latest = self._latest(aggregate_id)
        return int(latest["notification_id"]) if latest else 0

    def created(self, aggregate_ids: Sequence[UUID]) -> set[UUID]:
        """Which of these aggregates exist: one query on the log's primary key, where the
        recorder can (LogIndex), instead of loading each."""
        if self._index is not None:
            return self._index.created(aggregate_ids)
        return {i for i in aggregate_ids
                if self.recorder.select_events(i, limit=1)}

    def _latest(self, aggregate_id: UUID) -> dict[str, Any] | None:
        """The version and log position of the aggregate's latest event, without its
        state (the library's reader would fetch that too)."""
        if self._index is not None:
            found = self._index.latest(aggregate_id)
        else:  # the library's reader: no position to give (0 waits for nothing)
            events = self.recorder.select_events(aggregate_id, desc=True, limit=1)
            found = (events[0].originator_version, 0) if events else None
        if found is None:
            return None
        return {"originator_version": found[0], "notification_id": found[1]}

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Refuse, before anything is recorded, an event holding text no reader could
        store: whichever way a command came (HTTP, CLI, webhook, generator), the log
        must never take in an event its read models cannot apply."""
        for obj in objs:
            for event in getattr(obj, "pending_events", None) or ([obj] if obj else []):
                require_storable(vars(event), type(event).__qualname__)
        token = subjects.set(recording(objs))
        try:
            return super().save(*objs, **kwargs)
        finally:
            subjects.reset(token)

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
