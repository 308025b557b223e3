"""Merging consecutive JSON-object updates of one row during a batched replay."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from projections.base import _merged


def test_consecutive_updates_of_a_row_merge_in_order_and_others_stay_apart() -> None:
    rows = [(Jsonb({"q1": ["a"]}), "r1"), (Jsonb({"q2": ["b"]}), "r1"),
            (Jsonb({"q1": ["c"]}), "r1"), (Jsonb({"q1": ["z"]}), "r2"),
            (Jsonb({"q3": []}), "r1")]
    merged = _merged(rows)
    assert [(doc.obj, row) for doc, row in merged] == [
        ({"q1": ["c"], "q2": ["b"]}, "r1"),  # the later save of q1 wins, as in the log
        ({"q1": ["z"]}, "r2"),
        ({"q3": []}, "r1"),
    ]
