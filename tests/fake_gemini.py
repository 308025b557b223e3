"""A local HTTP server speaking the Gemini generateContent protocol, scripted per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request, Response

from tests.local_http import reply, serve

SUBJECTS = ["filters rows before grouping", "sorts the result set", "limits returned rows",
            "removes duplicate rows", "groups rows for aggregation", "filters groups",
            "combines rows of two tables", "renames a column in the output"]


def quiz_json(n: int) -> str:
    """n distinct, valid SINGLE questions (up to len(SUBJECTS))."""
    return json.dumps({"questions": [
        {"text": f"Which SQL clause {subject}?", "type": "SINGLE",
         "explanation": "See the SQL reference.",
         "options": [{"text": f"Clause A for {i}", "correct": True},
                     {"text": f"Clause B for {i}", "correct": False},
                     {"text": f"Clause C for {i}", "correct": False}]}
        for i, subject in enumerate(SUBJECTS[:n])]})


def candidate(text: str, finish: str = "STOP") -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": finish, "index": 0}],
            "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 10,
                              "totalTokenCount": 20},
            "modelVersion": "gemini-test"}


@dataclass
class FakeGemini:
    url: str = ""
    # Each entry: (status, body dict); served in order, the last one repeats.
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@contextmanager
def fake_gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini()

    def answer(request: Request) -> Response:
        fake.requests.append(json.loads(request.get_data()))
        fake.paths.append(request.path)
        index = min(len(fake.requests), len(fake.script)) - 1
        status, payload = fake.script[index]
        return reply(status, payload)

    with serve("POST", answer) as url:
        fake.url = url
        yield fake
