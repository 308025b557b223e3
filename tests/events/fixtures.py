"""One stored payload of every event type, as the log holds it: events are a permanent
format, read by every future release, auditors and analysts.

`APRANOVA_RECORD_EVENT_FIXTURES=1 .venv/bin/python -m pytest` writes a fixture for each
event type the suite stores that has none yet (tests/events/stored/). A fixture is never
rewritten: when an event's shape changes, its class gets a higher `class_version` and an
upcaster, the old fixture stays, and a new one is recorded beside it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

STORED = Path(__file__).parent / "stored"
_lock = threading.Lock()


def path_of(topic: str, version: int) -> Path:
    module, _, name = topic.partition(":")
    return STORED / f"{module.rsplit('.', 1)[-1]}.{name}.v{version}.json"


def _version(state: bytes) -> int:
    return int(json.loads(state).get("class_version", 1))


def record(stored_events: Sequence[StoredEvent]) -> None:
    """Keep the first payload seen of each (topic, class version)."""
    with _lock:
        STORED.mkdir(exist_ok=True)
        for stored in stored_events:
            target = path_of(stored.topic, _version(stored.state))
            if target.exists():
                continue
            text = json.dumps({
                "topic": stored.topic,
                "originator_id": str(stored.originator_id),
                "originator_version": stored.originator_version,
                "state": stored.state.decode(),
            }, indent=2, ensure_ascii=False) + "\n"
            # Test processes run side by side: the first to create the file keeps it.
            with contextlib.suppress(FileExistsError), target.open("x") as f:
                f.write(text)


def record_while_testing() -> None:
    """Record what the suite appends to the log, on PostgreSQL (LogRecorder) and on the
    in-memory persistence the unit tests use (same mapper, same stored format)."""
    from eventsourcing.popo import POPOApplicationRecorder

    from infrastructure.persistence import LogRecorder

    for recorder in (LogRecorder, POPOApplicationRecorder):
        appended = recorder.insert_events

        def insert_events(self: Any, stored_events: Sequence[StoredEvent],
                          _appended: Any = appended, **kwargs: Any) -> Any:
            ids = _appended(self, stored_events, **kwargs)
            record([e for e in stored_events if e.topic.startswith("domain.")])
            return ids

        recorder.insert_events = insert_events  # type: ignore[method-assign]


def fixtures() -> Iterator[dict[str, Any]]:
    for path in sorted(STORED.glob("*.json")):
        yield {"path": path, **json.loads(path.read_text())}
