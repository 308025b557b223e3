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

import threading
from collections.abc import Sequence
from queue import Empty, Full, Queue
from typing import Any

from eventsourcing.projection import ApplicationSubscription
from eventsourcing.utils import get_topic

from application.eventstore import EventStore
from projections.base import ReadModelProjection, batches

RUN_LIMIT = 500
# How often the loops look up from waiting to see whether they should stop.
TICK_SECONDS = 0.2


class ProjectionsRunner:
    def __init__(self, store: EventStore, projections: Sequence[ReadModelProjection]) -> None:
        self.store = store
        self.projections = list(projections)

    def run(self, stop: threading.Event) -> None:
        """Apply events until `stop` is set; raises on a failure (the caller restarts us)."""
        positions: dict[Any, int] = {p: p.view.position() for p in self.projections}
        topics = sorted({t for p in self.projections for t in p.topics})
        start = min(positions.values(), default=0)
        subscription = ApplicationSubscription(self.store, gt=start or None, topics=topics)
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
                    for event, tracking in subscription:
                        if not offer((tracking.notification_id, get_topic(type(event)), event)):
                            return
            except BaseException as exc:  # handed to the applying thread, which raises it
                offer(exc)

        reader = threading.Thread(target=read, name="projections-reader", daemon=True)
        reader.start()
        try:
            while not stop.is_set():
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
                for batch in batches(self.projections, positions, events):
                    batch.apply()
                for item in run:
                    if isinstance(item, BaseException):
                        raise item
        finally:
            finished.set()
            subscription.stop()
            reader.join(timeout=5)
