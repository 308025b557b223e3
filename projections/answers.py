"""Answers of reads kept while the read models they come from have not moved.

A read model's position moves only when it applies an event it follows, and every API
process hears each move (PositionBoard). So the answer to a read is the same for as
long as the positions of the models it reads stay where they were when it was made;
three of every four requests of a student's session list quizzes, whose answer changes
only when a quiz is published. Read-your-writes is kept: a request waits for its
`X-Position` first, and the position it then sees is part of the key.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence

from projections.base import ReadModel

# Announcements can be lost (a dropped listener connection): no answer is trusted longer.
TTL_SECONDS = 30.0


class AnswerCache:
    """At most `max_bytes` of answers (their bodies), the least recently used going
    first: a per-process memory ceiling whatever the number of callers."""

    def __init__(self, max_bytes: int, ttl_seconds: float = TTL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl_seconds
        self.clock = clock
        self._entries: OrderedDict[Hashable, tuple[tuple[int, ...], float, bytes]] = (
            OrderedDict())
        self._size = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def answer(self, views: Sequence[ReadModel], key: Hashable,
               make: Callable[[], bytes]) -> bytes:
        """The answer `make` gives, made again only once one of `views` has moved."""
        if self.max_bytes <= 0 or not all(v.board.listening for v in views):
            return make()  # positions unknown here: every read asks the database
        stamp = _positions(views)
        now = self.clock()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] == stamp and now - found[1] < self.ttl:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[2]
            self.misses += 1
        made = make()
        # Kept only if nothing moved while it was made: else it may predate the stamp.
        if _positions(views) == stamp and len(made) <= self.max_bytes:
            with self._lock:
                replaced = self._entries.pop(key, None)
                self._size += len(made) - (len(replaced[2]) if replaced else 0)
                self._entries[key] = (stamp, now, made)
                while self._size > self.max_bytes:
                    self._size -= len(self._entries.popitem(last=False)[1][2])
        return made


def _positions(views: Sequence[ReadModel]) -> tuple[int, ...]:
    return tuple(v.board.heard(v.position_key) for v in views)
