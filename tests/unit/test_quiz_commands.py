"""Quiz commands on the library's in-memory persistence: given events, when a command,
then the events it recorded or the error it raised. No PostgreSQL, no Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.authorization import Actor
from application.eventstore import EventStore
from application.ports import GeneratedQuestions
from application.quizzes import QuizCommands
from domain.errors import Conflict, Forbidden, NotFound
from domain.quizzes import Attempt, Quiz
from domain.roles import Role
from tests.unit.fakes import Attempts, Clock

TRAINER = Actor(uuid4(), Role.TRAINER)
OTHER_TRAINER = Actor(uuid4(), Role.TRAINER)
STUDENT = Actor(uuid4(), Role.STUDENT)
QUIZ_TIME = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _question(text: str) -> dict[str, Any]:
    return {"text": text, "type": "SINGLE", "explanation": "why",
            "options": [{"text": f"{text} {i}", "correct": i == 0} for i in range(4)]}


@pytest.fixture
def world() -> Iterator[tuple[EventStore, QuizCommands, Clock, Attempts]]:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    clock = Clock(QUIZ_TIME)
    attempts = Attempts()
    yield store, QuizCommands(store, clock, attempts), clock, attempts
    store.close()


def _published(store: EventStore, commands: QuizCommands, settings: dict[str, Any]) -> Quiz:
    created = commands.request(TRAINER, "Joins", "SQL joins", "PROMPT", 2, "DP")
    commands.complete_generation(created.id, GeneratedQuestions(
        [_question("Inner join?"), _question("Left join?")], {"generator": "test"}),
        None, {})
    commands.edit(TRAINER, created.id, None, None, settings, "")
    commands.publish(TRAINER, created.id)
    return store.load(Quiz, created.id)


def _events(store: EventStore, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in store.events.get(aggregate_id)]


def test_only_authors_generate_and_only_the_owner_edits(world: Any) -> None:
    store, commands, _, _ = world
    with pytest.raises(Forbidden):
        commands.request(STUDENT, "t", "p", "PROMPT", 1, "DP")
    quiz = _published(store, commands, {})
    with pytest.raises((Forbidden, NotFound)):
        commands.edit(OTHER_TRAINER, quiz.id, "Mine now", None, None, "")
    assert _events(store, quiz.id)[-1] == "Published"


def test_an_attempt_starts_resumes_is_answered_and_submitted(world: Any) -> None:
    store, commands, _, _ = world
    quiz = _published(store, commands, {"attempts_allowed": 1})
    started = commands.start(STUDENT, quiz.id)
    again = commands.start(STUDENT, quiz.id)
    assert not started.resumed and again.resumed and again.id == started.id
    attempt = store.load(Attempt, started.id)
    first = quiz.questions[0]
    correct = [o["id"] for o in first["options"] if o["correct"]]
    commands.answer(STUDENT, attempt.id, first["id"], correct)
    commands.submit(STUDENT, attempt.id)
    assert _events(store, attempt.id) == ["Started", "AnswerSaved", "Submitted"]
    assert store.load(Attempt, attempt.id).score == 1
    with pytest.raises(Conflict) as no_more:
        commands.start(STUDENT, quiz.id)
    assert no_more.value.code == "NO_ATTEMPTS_LEFT"


def test_an_attempt_past_its_time_is_submitted_with_what_was_saved(world: Any) -> None:
    store, commands, clock, _ = world
    quiz = _published(store, commands, {"time_limit_seconds": 60, "attempts_allowed": 2})
    started = commands.start(STUDENT, quiz.id)
    clock.at += timedelta(minutes=5)
    second = commands.start(STUDENT, quiz.id)  # the first is closed on the way
    assert second.id != started.id
    closed = list(store.events.get(started.id))[-1]
    assert type(closed).__name__ == "Submitted" and closed.automatic


def test_a_regrade_after_a_correction_changes_only_the_grades_that_moved(world: Any) -> None:
    store, commands, _, attempts = world
    quiz = _published(store, commands, {"attempts_allowed": 1})
    started = commands.start(STUDENT, quiz.id)
    attempts.started[quiz.id] = [started.id]
    first = quiz.questions[0]
    wrong = [o["id"] for o in first["options"] if not o["correct"]][:1]
    commands.answer(STUDENT, started.id, first["id"], wrong)
    commands.submit(STUDENT, started.id)
    # The author corrects the key: the option the student chose was right after all.
    corrected = [dict(q) for q in quiz.questions]
    corrected[0] = {**first, "options": [{**o, "correct": o["id"] in wrong}
                                         for o in first["options"]]}
    commands.edit(TRAINER, quiz.id, None, corrected, None, "key fixed")
    preview, _ = commands.regrade(TRAINER, quiz.id, dry_run=True, reason="key fixed")
    assert [(c.previous_score, c.new_score) for c in preview] == [(0.0, 1.0)]
    assert _events(store, started.id)[-1] == "Submitted"  # a dry run records nothing
    done, position = commands.regrade(TRAINER, quiz.id, dry_run=False, reason="key fixed")
    assert len(done) == 1 and position > 0
    assert _events(store, started.id)[-1] == "Regraded"
    assert commands.regrade(TRAINER, quiz.id, dry_run=False, reason="again")[0] == []
