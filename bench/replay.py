"""Replay speed: rebuilding every read model against reading the raw log, same run.

    python -m bench.replay [--students 1500]

Writes a mixed workload straight through the aggregates into a fresh database
(accounts, students, trainer assignments, profile edits, quizzes, attempts with
answers), then measures, in alternating rounds, (1) reading the whole log with deserialisation and
(2) rebuilding all read models from it into shadow tables. Prints the medians'
events/s and their ratio; the target is rebuild >= 1/3 of the raw read rate.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import ExitStack
from pathlib import Path
from tempfile import mkdtemp
from uuid import uuid4

from application.eventstore import EventStore
from application.quizzes import with_ids
from bench.commands import BENCH_SECRETS, fresh_database
from domain.accounts import Account, EmailClaim
from domain.quizzes import Attempt, Layout, Quiz
from domain.students import Student
from domain.trainers import TrainerCapacity
from infrastructure.bootstrap import PROJECTIONS, build
from infrastructure.settings import Settings
from projections.rebuild import finish, replay_many, shadow

TOPICS = ["an inner join", "a left join", "an index", "a primary key", "a view"]
QUESTIONS = [{"text": f"What is {topic} for?", "type": "SINGLE", "explanation": "",
              "options": [{"text": f"answer {i}-{j}", "correct": j == 0} for j in range(4)]}
             for i, topic in enumerate(TOPICS)]


def workload(store: EventStore, students: int) -> None:
    trainer_id = uuid4()
    trainer = Account(id=trainer_id, email="t@example.com", name="T", role="trainer",
                      actor_id=trainer_id)
    capacity = TrainerCapacity(trainer_id=trainer_id, limit=students + 1)
    quiz = Quiz(title="Q", prompt="sql", generation_type="PROMPT", num_questions=5,
                track="DP", owner_id=trainer_id, actor_id=trainer_id)
    quiz.record_generated(with_ids(QUESTIONS), {"generator": "bench"})
    quiz.publish(actor_id=trainer_id)
    store.save(trainer, capacity, quiz)
    for n in range(students):
        account_id = uuid4()
        email = f"s{n}@example.com"
        account = Account(id=account_id, email=email, name=f"S{n}", role="student",
                          actor_id=account_id)
        account.update_profile(f"Student {n}", actor_id=account_id)
        student = Student(account_id=account_id, track="DP", actor_id=account_id)
        capacity.take(account_id, actor_id=trainer_id)
        student.assign_trainer(trainer_id=trainer_id, previous_trainer_id=None,
                               actor_id=trainer_id)
        layout = Layout.for_attempt(quiz, str(n))
        attempt = Attempt(quiz_id=quiz.id, student_id=account_id, number=1,
                          question_order=layout.questions, option_order=layout.options,
                          deadline=None, actor_id=account_id)
        for q in quiz.questions:
            attempt.save_answer(quiz, q["id"], [q["options"][n % 4]["id"]], actor_id=account_id,
                                now=attempt.modified_on)
        attempt.submit(quiz, actor_id=account_id, automatic=False)
        store.save(account, EmailClaim(email=email, account_id=account_id), student, capacity,
                   attempt)


def read_log(store: EventStore) -> float:
    """Seconds to read the whole log with deserialisation: the baseline."""
    started, start = time.perf_counter(), 1
    while batch := store.recorder.select_notifications(start=start, limit=1000):
        for n in batch:
            store.mapper.to_domain_event(n)
        start = batch[-1].id + 1
    return time.perf_counter() - started


def rebuild_all(store: EventStore, env: dict[str, str]) -> tuple[float, int]:
    """Seconds to rebuild every read model into fresh shadow tables, and the applications."""
    with ExitStack() as stack:
        fresh = [p(view=stack.enter_context(shadow(env, p))) for p in PROJECTIONS]
        started = time.perf_counter()
        applied = replay_many(store, fresh, None)
        for projection in fresh:
            finish(projection.view, projection.view_class.tables)
        return time.perf_counter() - started, applied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with fresh_database() as url:
        settings = Settings(database_url=url, redis_url="redis://127.0.0.1:6379/0",
                            **BENCH_SECRETS, data_dir=Path(mkdtemp()))
        container = build(settings)
        try:
            started = time.perf_counter()
            workload(container.store, args.students)
            total = container.store.recorder.max_notification_id() or 0
            print(f"wrote {total} events in {time.perf_counter() - started:.1f}s")
            # Alternate the two so that the machine's drifts touch both alike.
            reads, rebuilds = [], []
            for _ in range(args.rounds):
                reads.append(read_log(container.store))
                seconds, applied = rebuild_all(container.store, container.env)
                rebuilds.append(seconds)
        finally:
            container.close()
    read_rate = total / statistics.median(reads)
    rebuild_rate = total / statistics.median(rebuilds)
    print(f"medians of {args.rounds} alternating rounds over {total} events:")
    print(f"raw log read (with deserialisation): {read_rate:>9.0f} events/s")
    print(f"rebuild of all {len(PROJECTIONS)} read models:  {rebuild_rate:>9.0f} events/s "
          f"of log ({applied} event applications per rebuild)")
    ratios = [read / rebuild for read, rebuild in zip(reads, rebuilds, strict=True)]
    print(f"ratio rebuild / raw read: {rebuild_rate / read_rate:.2f} of the medians, "
          f"{statistics.median(ratios):.2f} median of the rounds' (target >= 0.33); rounds: "
          + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
