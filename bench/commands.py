"""Command throughput against the bare eventsourcing save, measured in the same run.

    python -m bench.commands [--events 400] [--threads 4]

Uses the machine's PostgreSQL (APRANOVA_BENCH_ADMIN_URL, default 127.0.0.1:5432) in a
fresh database that is dropped afterwards. Prints events/s and the ratio to the
baseline; the ratio is what to compare across machines and runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from tempfile import mkdtemp
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.domain import Aggregate, event
from pydantic import SecretStr

from application.accounts import Actor
from application.ports import GeneratedQuestions
from domain.quizzes import Quiz
from domain.roles import Role, Track
from infrastructure.bootstrap import Container, build
from infrastructure.settings import Settings

ADMIN_URL = os.environ.get("APRANOVA_BENCH_ADMIN_URL",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


class Thing(Aggregate):
    """The baseline: the smallest aggregate the library can save."""

    class Touched(Aggregate.Event):
        n: int

    @event(Touched)
    def touch(self, n: int) -> None:
        self.n = n


# The keys a deployment is given (build refuses to start without them), for benchmarks.
BENCH_SECRETS: dict[str, Any] = {
    "jwt_secret": SecretStr("bench-" + "x" * 40),
    "credentials_key": SecretStr("uV8xF1m3oVb0l6yQ1w7kS3n9pZ2cR5tE8aH4jL0dG6M="),
    "pseudonym_key": SecretStr("bench-pseudonyms-" + "y" * 40),
}

@contextmanager
def fresh_database() -> Iterator[str]:
    name = f"apranova_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    info["dbname"] = name
    try:
        yield psycopg.conninfo.make_conninfo("", **info)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def rate(work: Callable[[int], None], count: int, threads: int) -> float:
    """Events per second for `count` calls of work(i) spread over `threads` threads."""
    started = time.perf_counter()
    if threads == 1:
        for i in range(count):
            work(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(count)))
    return count / (time.perf_counter() - started)


def published_quiz(container: Container) -> UUID:
    """A published quiz of five single-choice questions of four options, many attempts
    allowed, written straight through the commands (no generator)."""
    trainer = Actor(uuid.uuid4(), Role.TRAINER)
    quizzes = container.quizzes
    quiz_id = quizzes.request(trainer, "Bench quiz", "joins", "PROMPT", 5, None).id
    topics = ("an inner join", "a left outer join", "GROUP BY", "HAVING", "a window function")
    questions = [{"text": f"What does {topic} return?", "type": "SINGLE", "explanation": "",
                  "options": [{"text": f"Option {k}", "correct": k == 0} for k in range(4)]}
                 for topic in topics]
    quizzes.complete_generation(quiz_id, GeneratedQuestions(questions, {"source": "bench"}),
                                None, {})
    quizzes.publish(trainer, quiz_id)
    return quiz_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with fresh_database() as url:
        settings = Settings(database_url=url, redis_url="redis://127.0.0.1:6379/0",
                            **BENCH_SECRETS, data_dir=Path(mkdtemp()),
                            pool_size=args.threads + 4)
        container = build(settings)
        store, accounts = container.store, container.accounts
        try:
            # Accounts to update (registration hashes a password: kept out of the timing).
            people = [accounts.register_student(f"bench{i}@example.com", f"P{i}",
                                                "correct horse battery", Track.FULL_STACK)
                      for i in range(args.threads * 4)]
            actors = [Actor(p.account_id, Role.STUDENT) for p in people]
            things = [Thing() for _ in range(args.threads * 4)]
            store.save(*things)

            def bare_save(i: int) -> None:
                thing = things[i % len(things)]
                # Each thread owns its own aggregates, so no conflicts in either measure.
                thing = store.repository.get(thing.id)
                thing.touch(i)
                store.save(thing)

            def profile_update(i: int) -> None:
                accounts.update_profile(actors[i % len(actors)], f"Name {i}")

            quiz_id = published_quiz(container)
            attempts = [container.quizzes.start(a, quiz_id).id for a in actors]
            quiz = store.load(Quiz, quiz_id)

            def answer_save(i: int) -> None:
                # Each slot's student answers in turn, a different option each time round
                # (an unchanged answer stores nothing).
                slot, turn = i % len(actors), i // len(actors)
                question = quiz.questions[turn % len(quiz.questions)]
                option = question["options"][(turn // len(quiz.questions)) % 4]["id"]
                container.quizzes.answer(actors[slot], attempts[slot], question["id"], [option])

            rows = []
            for threads in (1, args.threads):
                base, cmd, ans = [], [], []
                for _ in range(args.rounds):
                    base.append(rate(bare_save, args.events, threads))
                    cmd.append(rate(profile_update, args.events, threads))
                    ans.append(rate(answer_save, args.events, threads))
                b, c, a = (statistics.median(x) for x in (base, cmd, ans))
                rows.append((threads, b, c, c / b, a, a / b))
            started = time.perf_counter()
            registrations = 20
            for i in range(registrations):
                accounts.register_student(f"r{i}-{uuid.uuid4().hex[:6]}@example.com", "R",
                                          "correct horse battery", Track.DATA_PROFESSIONAL)
            register_rate = registrations / (time.perf_counter() - started)
        finally:
            container.close()

    print(f"command throughput, {args.events} events x {args.rounds} rounds (median)")
    print(f"{'threads':>7} {'bare save ev/s':>15} {'profile update ev/s':>20} {'ratio':>7}"
          f" {'answer save ev/s':>17} {'ratio':>7}")
    for threads, b, c, ratio, a, a_ratio in rows:
        print(f"{threads:>7} {b:>15.0f} {c:>20.0f} {ratio:>7.2f} {a:>17.0f} {a_ratio:>7.2f}")
    print(f"register (argon2id hashing included, sequential): {register_rate:.1f}/s, "
          f"ratio to sequential bare save {register_rate / rows[0][1]:.3f}")


if __name__ == "__main__":
    main()
