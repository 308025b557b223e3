"""Exporting the analysts' event stream to files DuckDB reads directly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from projections.analytics import EventStream

PAGE = 5000


def _pages(stream: EventStream, after: int) -> Iterator[list[dict[str, Any]]]:
    while True:
        events, last = stream.page(after, PAGE)
        if not events:
            return
        yield events
        after = last


def export_events(stream: EventStream, output: Path, after: int, format: str
                  ) -> tuple[int, int]:
    """Write CloudEvents after `after` as JSON lines or Parquet; return (count, last position)."""
    count, last = 0, after
    if format == "jsonl":
        with output.open("w", encoding="utf-8") as f:
            for events in _pages(stream, after):
                for e in events:
                    f.write(json.dumps(e, separators=(",", ":")) + "\n")
                count += len(events)
                last = int(events[-1]["sequence"])
        return count, last

    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("source", pa.string()), ("type", pa.string()),
                        ("time", pa.timestamp("us", tz="UTC")), ("subject", pa.string()),
                        ("sequence", pa.int64()), ("data", pa.string())])
    with pq.ParquetWriter(output, schema) as writer:
        for events in _pages(stream, after):
            writer.write_table(pa.table({
                "id": [e["id"] for e in events], "source": [e["source"] for e in events],
                "type": [e["type"] for e in events],
                "time": [datetime.fromisoformat(e["time"]) for e in events],
                "subject": [e["subject"] for e in events],
                "sequence": [int(e["sequence"]) for e in events],
                "data": [json.dumps(e["data"]) for e in events],
            }, schema=schema))
            count += len(events)
            last = int(events[-1]["sequence"])
    return count, last
