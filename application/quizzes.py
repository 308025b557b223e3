"""Quiz commands: generation requests, editing, publishing, attempts, grading, regrading."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from application.accounts import Actor
from application.authorization import AUTHORS
from application.eventstore import EventStore, retry_on_conflict
from application.ports import AttemptIndex, Clock, GeneratedQuestions
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.quizzes import (
    IN_PROGRESS,
    PUBLISHED,
    Attempt,
    Layout,
    Quiz,
    QuizSettings,
    overdue,
    question_problems,
)
from domain.roles import Role, is_staff
from domain.text import storable, storable_json

GENERATION_TYPES = ("PROMPT", "WEB_SEARCH")


@dataclass(frozen=True)
class Created:
    id: UUID
    position: int


@dataclass(frozen=True)
class AttemptStarted:
    id: UUID
    position: int
    resumed: bool


@dataclass(frozen=True)
class RegradeChange:
    attempt_id: UUID
    student_id: UUID
    previous_score: float
    new_score: float
    max_score: float


_order = secrets.SystemRandom()


def shuffled_options(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions with their options in a random order. Generators tend to put the
    right answer first (the question bank does, every time); stored as they came, the
    position of an option would give the key away to anyone reading a quiz."""
    out = []
    for q in questions:
        options = list(q.get("options", []))
        _order.shuffle(options)
        out.append({**q, "options": options})
    return out


def with_ids(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give new questions and options ids; keep the ids they already have."""
    def new_id(prefix: str) -> str:
        return f"{prefix}{secrets.token_hex(4)}"

    return [{
        "id": q.get("id") or new_id("q"),
        "text": q["text"], "type": q["type"], "explanation": q.get("explanation", ""),
        "options": [{"id": o.get("id") or new_id("o"), "text": o["text"],
                     "correct": o["correct"] is True} for o in q["options"]],
    } for q in questions]


class QuizCommands:
    def __init__(self, store: EventStore, clock: Clock, attempts: AttemptIndex) -> None:
        self.store = store
        self.clock = clock
        self.attempts = attempts

    # -- authoring -------------------------------------------------------------------------

    def request(self, actor: Actor, title: str, prompt: str, generation_type: str,
                num_questions: int, track: str | None) -> Created:
        if actor.role not in AUTHORS:
            raise Forbidden("Only trainers and administrators generate quizzes",
                            code="PERMISSION_DENIED")
        if generation_type not in GENERATION_TYPES:
            raise Invalid("generation_type is PROMPT or WEB_SEARCH", code="INVALID_TYPE")
        quiz = Quiz(title=title, prompt=prompt, generation_type=generation_type,
                    num_questions=num_questions, track=track, owner_id=actor.id,
                    actor_id=actor.id)
        return Created(quiz.id, self.store.commit(quiz))

    def complete_generation(self, quiz_id: UUID, result: GeneratedQuestions | None,
                            failure: str | None, provenance: dict[str, Any]) -> int:
        def command() -> int:
            quiz = self.store.load(Quiz, quiz_id, "Quiz")
            # What a generator says of itself (reasons, provenance) can hold anything;
            # its questions are checked, whatever their shape, before anything reads them.
            if result is None:
                quiz.record_failure(storable(failure or "generation failed"),
                                    storable_json(provenance))
            elif problems := question_problems(result.questions, quiz.num_questions):
                reason = "generated questions were invalid: " + "; ".join(problems)
                quiz.record_failure(storable(reason), storable_json(result.provenance))
            else:
                quiz.record_generated(with_ids(shuffled_options(result.questions)),
                                      storable_json(result.provenance))
            return self.store.commit(quiz)

        return retry_on_conflict(command)

    def _authored(self, actor: Actor, quiz_id: UUID) -> Quiz:
        quiz = self.store.load(Quiz, quiz_id, "Quiz")
        if is_staff(actor.role):
            return quiz
        if actor.role is Role.TRAINER and quiz.owner_id == actor.id:
            return quiz
        if actor.role is Role.TRAINER:
            raise Forbidden("Trainers change only their own quizzes", code="NOT_YOUR_QUIZ")
        raise NotFound("Quiz not found")

    def edit(self, actor: Actor, quiz_id: UUID, title: str | None,
             questions: list[dict[str, Any]] | None, settings: dict[str, Any] | None,
             reason: str) -> int:
        def command() -> int:
            quiz = self._authored(actor, quiz_id)
            merged = {**quiz.settings.as_dict(), **(settings or {})}
            quiz.edit(title if title is not None else quiz.title,
                      with_ids(questions) if questions is not None else quiz.questions,
                      QuizSettings.from_dict(merged), actor_id=actor.id, reason=reason)
            return self.store.commit(quiz)

        return retry_on_conflict(command)

    def publish(self, actor: Actor, quiz_id: UUID) -> int:
        def command() -> int:
            quiz = self._authored(actor, quiz_id)
            quiz.publish(actor_id=actor.id)
            return self.store.commit(quiz)

        return retry_on_conflict(command)

    def archive(self, actor: Actor, quiz_id: UUID, reason: str) -> int:
        def command() -> int:
            quiz = self._authored(actor, quiz_id)
            quiz.archive(actor_id=actor.id, reason=reason or "deleted")
            return self.store.commit(quiz)

        return retry_on_conflict(command)

    # -- attempts --------------------------------------------------------------------------

    def attempt_count(self, quiz_id: UUID, student_id: UUID) -> int:
        """How many attempts a student has started at a quiz. Ids derive from the
        attempt's number and numbers run without gaps, so one query asks which of the
        next ids exist, instead of loading every attempt."""
        count, batch = 0, 20
        while True:
            ids = [Attempt.id_for(quiz_id, student_id, n)
                   for n in range(count + 1, count + batch + 1)]
            found = self.store.created(ids)
            for attempt_id in ids:
                if attempt_id not in found:
                    return count
                count += 1

    def start(self, actor: Actor, quiz_id: UUID) -> AttemptStarted:
        """Start the next attempt, or return the one in progress."""
        def command() -> AttemptStarted:
            quiz = self.store.find_read_only(Quiz, quiz_id)
            if quiz is None or quiz.status != PUBLISHED:
                raise NotFound("Quiz not found")
            count = self.attempt_count(quiz_id, actor.id)
            last = self.store.find(Attempt, Attempt.id_for(quiz_id, actor.id, count)) \
                if count else None
            now = self.clock.now()
            position = 0
            if last is not None and last.status == IN_PROGRESS:
                if not last.is_overdue(now):
                    # Resumed: read it once its own latest event is in the read model.
                    return AttemptStarted(last.id, self.store.position_of(last.id),
                                          resumed=True)
                last.submit(quiz, actor_id=None, automatic=True)
                position = self.store.commit(last)
            if count >= quiz.settings.attempts_allowed:
                raise Conflict("No attempts left for this quiz", code="NO_ATTEMPTS_LEFT",
                               allowed=quiz.settings.attempts_allowed, position=position)
            number = count + 1
            layout = Layout.for_attempt(quiz, f"{quiz_id}:{actor.id}:{number}")
            limit = quiz.settings.time_limit_seconds
            attempt = Attempt(quiz_id=quiz_id, student_id=actor.id, number=number,
                              question_order=layout.questions, option_order=layout.options,
                              deadline=now + timedelta(seconds=limit) if limit else None,
                              actor_id=actor.id)
            return AttemptStarted(attempt.id, self.store.commit(attempt), resumed=False)

        return retry_on_conflict(command)

    def _own_attempt(self, actor: Actor, attempt_id: UUID) -> tuple[Attempt, Quiz]:
        attempt = self.store.find(Attempt, attempt_id)
        if attempt is None or attempt.student_id != actor.id:
            raise NotFound("Attempt not found")
        quiz = self.store.find_read_only(Quiz, attempt.quiz_id)
        if quiz is None:
            raise NotFound("Quiz not found")
        return attempt, quiz

    def answer(self, actor: Actor, attempt_id: UUID, question_id: str,
               option_ids: list[str]) -> int:
        """Save an answer (last write wins). Past the time limit the attempt is submitted."""
        def command() -> int:
            attempt, quiz = self._own_attempt(actor, attempt_id)
            now = self.clock.now()
            if attempt.is_overdue(now):
                attempt.submit(quiz, actor_id=None, automatic=True)
                position = self.store.commit(attempt)
                raise Conflict("The time limit has passed; the attempt was submitted with "
                               "the answers saved before it", code="ATTEMPT_EXPIRED",
                               position=position)
            attempt.save_answer(quiz, question_id, option_ids, actor_id=actor.id, now=now)
            return self.store.commit(attempt)

        return retry_on_conflict(command)

    def submit(self, actor: Actor, attempt_id: UUID) -> int:
        def command() -> int:
            attempt, quiz = self._own_attempt(actor, attempt_id)
            automatic = attempt.is_overdue(self.clock.now())
            attempt.submit(quiz, actor_id=None if automatic else actor.id, automatic=automatic)
            return self.store.commit(attempt)

        return retry_on_conflict(command)

    def settle(self, actor: Actor, attempt_id: UUID,
               seen: tuple[str, datetime | None] | None = None) -> int:
        """On reading an attempt: submit it if its time ran out (lazy auto-submit).

        `seen` is the attempt's status and deadline as a read model shows them. Neither
        changes once set but for submission, so when they say it can't be overdue no
        command runs (most reads; the command loads the attempt and its quiz)."""
        if seen is not None and not overdue(*seen, self.clock.now()):
            return 0

        def command() -> int:
            attempt, quiz = self._own_attempt(actor, attempt_id)
            if not attempt.is_overdue(self.clock.now()):
                return 0
            attempt.submit(quiz, actor_id=None, automatic=True)
            return self.store.commit(attempt)

        return retry_on_conflict(command)

    # -- regrading -------------------------------------------------------------------------

    def regrade(self, actor: Actor, quiz_id: UUID, dry_run: bool, reason: str
                ) -> tuple[list[RegradeChange], int]:
        """Grade every submitted attempt again against the quiz as it is now.

        The attempts are found by replaying the log of Attempt.Started events; a dry run
        reports the changes without recording them.
        """
        quiz = self._authored(actor, quiz_id)
        changes: list[RegradeChange] = []
        position = 0
        for attempt_id in self.attempts.attempts_of(quiz_id):
            def command(attempt_id: UUID = attempt_id) -> RegradeChange | None:
                attempt = self.store.load(Attempt, attempt_id, "Attempt")
                previous = attempt.score
                grade = attempt.regrade(quiz, actor_id=actor.id, reason=reason)
                if grade is None:
                    return None
                nonlocal position
                if not dry_run:
                    position = max(position, self.store.commit(attempt))
                return RegradeChange(attempt.id, attempt.student_id, previous or 0.0,
                                     grade.score, grade.max_score)

            change = retry_on_conflict(command)
            if change is not None:
                changes.append(change)
        return changes, position

