"""The students' mix of bench.load, driven by Locust instead of the light client.

    python -m bench.load --client locust [--locust-user fast|http] ...

bench.load seeds the system, writes the students and quizzes to the file named by
BENCH_LOCUST_SEED, runs `locust --headless` on this file, and reads back every request
Locust made (start time, latency, outcome) from BENCH_LOCUST_SAMPLES, so both clients are
judged by one report. Each Locust user is one student: it logs in once, then takes quizzes
in the order of bench.load's Student, waiting `between(think)` after every request, on a
connection of its own (Locust's model: a thousand users hold a thousand mostly idle
keep-alive connections, where the light client shares a pool).
"""

from __future__ import annotations

import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser

SEED: dict[str, Any] = json.loads(Path(os.environ["BENCH_LOCUST_SEED"]).read_text())
THINK = between(*SEED["think"])
_next = itertools.count()
# (label, start epoch s, latency s, outcome, error) per request; written when Locust quits.
SAMPLES: list[tuple[str, float, float, str, bool]] = []
TOKENS: dict[str, str] = {}


@events.request.add_listener
def record(name: str, response_time: float, exception: BaseException | None,
           start_time: float, response: Any = None, **_: Any) -> None:
    status = getattr(response, "status_code", None) if response is not None else None
    outcome = type(exception).__name__ if status in (None, 0) and exception else str(status)
    SAMPLES.append((name, start_time, response_time / 1000, outcome, exception is not None))


@events.quitting.add_listener
def write(**_: Any) -> None:
    Path(os.environ["BENCH_LOCUST_SAMPLES"]).write_text(
        json.dumps({"samples": SAMPLES, "tokens": TOKENS}))


class Student:
    """One student's session; `client` is Locust's (either kind), `pause` its wait."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.email = SEED["emails"][next(_next) % len(SEED["emails"])]
        self.headers: dict[str, str] = {}

    def call(self, label: str, method: str, url: str, ok: tuple[int, ...] = (200,),
             **kw: Any) -> Any:
        with self.user.client.request(method, url, name=label, headers=self.headers,
                                      catch_response=True, **kw) as r:
            if r.status_code in ok:
                r.success()
                body = r.json()
            else:
                r.failure(f"{r.status_code}")
                body = None
        self.user.wait()
        return body

    def log_in(self) -> bool:
        body = self.call("POST /api/auth/login/", "POST", "/api/auth/login/",
                         json={"email": self.email, "password": SEED["password"]})
        if body is None:
            return False
        TOKENS[self.email] = body["access"]
        self.headers = {"Authorization": f"Bearer {body['access']}"}
        return True

    def take_a_quiz(self) -> None:
        for _ in range(3):
            self.call("GET /api/quiz/quizzes/", "GET", "/api/quiz/quizzes/")
        quiz = random.choice(SEED["quiz_ids"])
        self.call("GET /api/quiz/quizzes/{id}/", "GET", f"/api/quiz/quizzes/{quiz}/")
        attempt = self.call("POST /api/quiz/quizzes/{id}/start/", "POST",
                            f"/api/quiz/quizzes/{quiz}/start/", ok=(200, 201))
        if attempt is None:
            return
        for q in attempt["questions"]:
            self.call("POST /api/quiz/attempts/{id}/answer/", "POST",
                      f"/api/quiz/attempts/{attempt['id']}/answer/",
                      json={"question_id": q["id"],
                            "option_ids": [random.choice(q["options"])["id"]]})
        self.call("POST /api/quiz/attempts/{id}/submit/", "POST",
                  f"/api/quiz/attempts/{attempt['id']}/submit/")
        self.call("GET /api/quiz/attempts/{id}/", "GET", f"/api/quiz/attempts/{attempt['id']}/")
        self.call("GET /api/curriculum/progress/me/", "GET", "/api/curriculum/progress/me/")


def sign_in(user: Any) -> None:
    """Each user's start: log in, or give up, as the light client's student does."""
    user.student = Student(user)
    if not user.student.log_in():
        raise StopUser


def take_a_quiz(user: Any) -> None:
    user.student.take_a_quiz()


class FastStudent(FastHttpUser):
    """geventhttpclient: Locust's lighter client (the default here)."""

    wait_time = THINK
    concurrency = 1  # one keep-alive connection per user, as a browser tab would hold
    on_start = sign_in
    tasks = [take_a_quiz]


class RequestsStudent(HttpUser):
    """python-requests: the design document's own HttpUser."""

    wait_time = THINK
    on_start = sign_in
    tasks = [take_a_quiz]
