"""One subscription to the log feeding every read model of a process.

Each projection keeps its own tracking position, updated in the same transaction as
its rows, so each event is still applied exactly once per model. Sharing the
subscription and the pools keeps a process at a handful of connections instead of
three per model (measured: eight runners held about 24 connections).

Events are applied in runs: whatever has arrived since the last transaction, up to
RUN_LIMIT events, becomes one transaction per model. At rest a run is one event, as
before; when writes outpace the models (a burst of answer saves), the runs grow, and a
model's cost per event falls instead of its lag growing (one commit, one announcement
and one pipelined round trip per run, instead of per event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from queue import Empty, Full, Queue
from typing import Any

from application.eventstore import EventStore
from projections import stalls
from projections.base import Batch, ReadModelProjection, Undecodable, batches

log = logging.getLogger("apranova.projections")

RUN_LIMIT = 500
# How often the loops look up from waiting to see whether they should stop.
TICK_SECONDS = 0.2
# A stalled model is tried again after these pauses, doubling up to the last.
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 300.0


@dataclass
class _Stalled:
    stall: stalls.Stall
    retry_at: float


class ProjectionsRunner:
    """Feeds every read model from one subscription; a model that cannot apply an event
    stops at it alone, is retried with backoff, and is recorded for operators to see."""

    def __init__(self, store: EventStore, projections: Sequence[ReadModelProjection]) -> None:
        self.store = store
        self.projections = list(projections)
        self.stalled: dict[str, _Stalled] = {}
        self._loaded = False

    def run(self, stop: threading.Event) -> None:
        """Apply events until `stop` is set; raises on a failure of the log's reading
        (the caller restarts us). Each time a stalled model is due to be tried again,
        the subscription starts over from the lowest position that model needs."""
        if not self._loaded:
            self._load_stalls()
        while not stop.is_set():
            self._follow(stop)

    def _follow(self, stop: threading.Event) -> None:
        self._forget_passed()
        now = time.monotonic()
        active = [p for p in self.projections
                  if p.name not in self.stalled or self.stalled[p.name].retry_at <= now]
        if not active:
            stop.wait(min(s.retry_at for s in self.stalled.values()) - now)
            return
        positions: dict[Any, int] = {p: p.view.position() for p in active}
        topics = sorted({t for p in active for t in p.topics})
        start = min(positions.values(), default=0)
        subscription = self.store.recorder.subscribe(gt=start or None, topics=topics)
        # The reader deserialises the next events while this thread applies a run.
        arrived: Queue[tuple[int, str, Any] | BaseException] = Queue(maxsize=2 * RUN_LIMIT)
        finished = threading.Event()

        def offer(item: tuple[int, str, Any] | BaseException) -> bool:
            while not finished.is_set():
                try:
                    arrived.put(item, timeout=TICK_SECONDS)
                    return True
                except Full:
                    continue
            return False

        def read() -> None:
            try:
                with subscription:
                    for stored in subscription:
                        try:
                            event: Any = self.store.mapper.to_domain_event(stored)
                        except Exception as error:
                            event = Undecodable(error)
                        if not offer((stored.id, stored.topic, event)):
                            return
            except BaseException as exc:  # handed to the applying thread, which raises it
                offer(exc)

        reader = threading.Thread(target=read, name="projections-reader", daemon=True)
        reader.start()
        try:
            while not stop.is_set():
                if self._retry_due(active):
                    return
                try:
                    run = [arrived.get(timeout=TICK_SECONDS)]
                except Empty:
                    if not reader.is_alive():
                        raise RuntimeError("the log subscription ended") from None
                    continue
                while len(run) < RUN_LIMIT:
                    try:
                        run.append(arrived.get_nowait())
                    except Empty:
                        break
                events = [item for item in run if not isinstance(item, BaseException)]
                for batch in batches(active, positions, events):
                    if not self._apply(batch):
                        active.remove(batch.projection)
                for item in run:
                    if isinstance(item, BaseException):
                        raise item
        finally:
            finished.set()
            subscription.stop()
            reader.join(timeout=5)

    def _forget_passed(self) -> None:
        """Stalls of models since moved past their event (by a rebuild) are over."""
        for projection in self.projections:
            stalled = self.stalled.get(projection.name)
            if stalled and projection.view.position() >= stalled.stall.position:
                del self.stalled[projection.name]
                with projection.view.datastore.transaction(commit=True) as curs:
                    stalls.clear(curs, projection.name)

    def _retry_due(self, active: list[ReadModelProjection]) -> bool:
        now = time.monotonic()
        return any(s.retry_at <= now for name, s in self.stalled.items()
                   if name not in {p.name for p in active})

    def _apply(self, batch: Batch) -> bool:
        """Apply one model's batch; on failure, apply its events one by one up to the
        one that fails and stall the model there. False if the model stalled."""
        name = batch.projection.name
        try:
            batch.apply()
            failed = None
        except Exception:
            failed = batch.apply_each()
        if failed is None:
            if name in self.stalled:
                del self.stalled[name]
                self._write(batch, lambda conn: stalls.clear(conn, name))
                log.warning("read model %s got past position %s", name, batch.position)
            return True
        position, event, error = failed
        earlier = self.stalled.get(name)
        attempts = earlier.stall.attempts + 1 if earlier and (
            earlier.stall.position == position) else 1
        topic = (type(event).__module__ + ":" + type(event).__qualname__
                 if not isinstance(event, Undecodable) else "undecodable")
        stall = stalls.Stall(name, position, topic, f"{type(error).__name__}: {error}",
                             attempts)
        pause = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
        self.stalled[name] = _Stalled(stall, time.monotonic() + pause)
        self._write(batch, lambda conn: stalls.record(conn, stall))
        (log.error if attempts == 1 else log.warning)(
            "read model %s stopped at position %s (%s), attempt %s, retrying in %.0f s: %s",
            name, position, topic, attempts, pause, stall.error,
            exc_info=error if attempts == 1 else None)
        return False

    def _write(self, batch: Batch, change: Any) -> None:
        """Record a stall's change; losing it must not stop the models (it is retried)."""
        try:
            with batch.projection.view.datastore.transaction(commit=True) as curs:
                change(curs)
        except Exception:
            log.exception("could not record the stall of %s", batch.projection.name)

    def _load_stalls(self) -> None:
        """Stalls recorded by an earlier run are tried again at once."""
        if not self.projections:
            return
        with self.projections[0].view.datastore.get_connection() as conn:
            for stall in stalls.current(conn):
                self.stalled[stall.model] = _Stalled(stall, 0.0)
        self._loaded = True
