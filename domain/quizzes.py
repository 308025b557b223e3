"""Quizzes and attempts.

A trainer asks for a quiz; a generator fills it; the trainer reviews, edits and
publishes it. Students take attempts: answers are saved as they go and graded on
submission. Answer keys never leave the trainer's side before the review policy allows.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, Invalid
from domain.grading import MULTIPLE, SINGLE, Grade, GradingMethod, Key, grade_attempt
from domain.ids import derived_id
from domain.text import first_problem

MIN_QUESTIONS, MAX_QUESTIONS = 1, 50
MIN_OPTIONS, MAX_OPTIONS = 2, 6
NEAR_DUPLICATE = 0.9
# Of a question, an option or an explanation; what the authoring API also allows.
MAX_TEXT = 2000
# Seconds allowed past the time limit for the last save to arrive.
GRACE_SECONDS = 5

GENERATING, DRAFT, FAILED, PUBLISHED, ARCHIVED = (
    "generating", "draft", "failed", "published", "archived")
IN_PROGRESS, SUBMITTED = "in_progress", "submitted"


class ShowAnswers(StrEnum):
    IMMEDIATELY = "immediately"
    AFTER_LAST_ATTEMPT = "after_last_attempt"
    NEVER = "never"


@dataclass(frozen=True)
class QuizSettings:
    time_limit_seconds: int | None = None
    attempts_allowed: int = 1
    grading_method: GradingMethod = GradingMethod.HIGHEST
    shuffle_questions: bool = False
    shuffle_options: bool = False
    partial_credit: bool = False
    show_answers: ShowAnswers = ShowAnswers.AFTER_LAST_ATTEMPT

    def __post_init__(self) -> None:
        if self.time_limit_seconds is not None and not 30 <= self.time_limit_seconds <= 86_400:
            raise Invalid("Time limit must be 30 s to 24 h", code="INVALID_SETTINGS")
        if not 1 <= self.attempts_allowed <= 20:
            raise Invalid("Attempts allowed must be 1 to 20", code="INVALID_SETTINGS")

    def as_dict(self) -> dict[str, Any]:
        return {"time_limit_seconds": self.time_limit_seconds,
                "attempts_allowed": self.attempts_allowed,
                "grading_method": self.grading_method.value,
                "shuffle_questions": self.shuffle_questions,
                "shuffle_options": self.shuffle_options,
                "partial_credit": self.partial_credit,
                "show_answers": self.show_answers.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuizSettings:
        try:
            return cls(
                time_limit_seconds=data.get("time_limit_seconds"),
                attempts_allowed=int(data.get("attempts_allowed", 1)),
                grading_method=GradingMethod(data.get("grading_method", "highest")),
                shuffle_questions=bool(data.get("shuffle_questions", False)),
                shuffle_options=bool(data.get("shuffle_options", False)),
                partial_credit=bool(data.get("partial_credit", False)),
                show_answers=ShowAnswers(data.get("show_answers", "after_last_attempt")),
            )
        except ValueError as error:
            raise Invalid(str(error), code="INVALID_SETTINGS") from None


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


def _near_duplicate(a: str, b: str) -> bool:
    # The cheap upper bounds first: ratio() is quadratic in the texts' length.
    matcher = SequenceMatcher(None, a, b)
    return (matcher.real_quick_ratio() >= NEAR_DUPLICATE
            and matcher.quick_ratio() >= NEAR_DUPLICATE
            and matcher.ratio() >= NEAR_DUPLICATE)


def _option_problems(n: int, kind: object, options: object) -> list[str]:
    if not isinstance(options, list) or not all(isinstance(o, dict) for o in options):
        return [f"question {n} needs a list of options, each with text and correct"]
    problems = []
    if not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        problems.append(f"question {n} needs {MIN_OPTIONS} to {MAX_OPTIONS} options")
    if not all(isinstance(o.get("text"), str) and len(o["text"]) <= MAX_TEXT
               for o in options):
        problems.append(f"question {n} has an option whose text is not text of at most "
                        f"{MAX_TEXT} characters")
    # Options keep their punctuation: "==" and "===" are different answers.
    texts = [" ".join(str(o.get("text", "")).lower().split()) for o in options]
    if len(set(texts)) != len(texts) or not all(texts):
        problems.append(f"question {n} has empty or duplicate options")
    if not all(isinstance(o.get("correct"), bool) for o in options):
        problems.append(f"question {n} has an option whose correct is not true or false")
    correct = sum(1 for o in options if o.get("correct") is True)
    if kind == SINGLE and correct != 1:
        problems.append(f"question {n} is SINGLE and needs exactly one correct option")
    if kind == MULTIPLE and not 2 <= correct < len(options):
        problems.append(f"question {n} is MULTIPLE and needs at least two correct options "
                        "and one incorrect")
    return problems


def question_problems(questions: list[dict[str, Any]], expected: int | None) -> list[str]:
    """Everything wrong with a question list, as sentences (also fed back to generators).
    Generator output can be of any shape, so nothing here assumes one."""
    problems: list[str] = []
    if not isinstance(questions, list):
        return ["the questions are not a list"]
    if expected is not None and len(questions) != expected:
        problems.append(f"expected {expected} questions, got {len(questions)}")
    if not MIN_QUESTIONS <= len(questions) <= MAX_QUESTIONS:
        # Past the bound, checking each question would only cost time and words.
        return [*problems, f"a quiz has {MIN_QUESTIONS} to {MAX_QUESTIONS} questions"]
    seen: list[str] = []
    for n, q in enumerate(questions, 1):
        if not isinstance(q, dict):
            problems.append(f"question {n} is not an object")
            continue
        text, kind = q.get("text", ""), q.get("type")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"question {n} has no text")
            continue
        if len(text) > MAX_TEXT:
            problems.append(f"question {n} is longer than {MAX_TEXT} characters")
            continue
        if kind not in (SINGLE, MULTIPLE):
            problems.append(f"question {n} must be SINGLE or MULTIPLE")
        explanation = q.get("explanation", "")
        if not isinstance(explanation, str) or len(explanation) > MAX_TEXT:
            problems.append(f"question {n} has an explanation that is not text of at most "
                            f"{MAX_TEXT} characters")
        problems += _option_problems(n, kind, q.get("options", []))
        if found := first_problem(q):
            problems.append(f"question {n} holds text that cannot be stored "
                            f"({found[0]}: {found[1]})")
        normal = _normal(text)
        if any(_near_duplicate(normal, other) for other in seen):
            problems.append(f"question {n} repeats an earlier question")
        seen.append(normal)
    return problems


def require_valid(questions: list[dict[str, Any]], expected: int | None = None) -> None:
    problems = question_problems(questions, expected)
    if problems:
        raise Invalid("The questions are not valid", code="INVALID_QUESTIONS",
                      problems=problems)


def keys_of(questions: list[dict[str, Any]]) -> dict[str, Key]:
    return {q["id"]: Key(type=q["type"],
                         options=frozenset(o["id"] for o in q["options"]),
                         correct=frozenset(o["id"] for o in q["options"] if o["correct"]))
            for q in questions}


class Quiz(Aggregate):
    class Requested(Aggregate.Created):
        title: str
        prompt: str
        generation_type: str
        num_questions: int
        track: str | None
        owner_id: UUID
        actor_id: UUID

    class Generated(Aggregate.Event):
        questions: list[dict[str, Any]]
        provenance: dict[str, Any]

    class GenerationFailed(Aggregate.Event):
        reason: str
        provenance: dict[str, Any]

    class Edited(Aggregate.Event):
        title: str
        questions: list[dict[str, Any]]
        settings: dict[str, Any]
        actor_id: UUID
        reason: str

    class Published(Aggregate.Event):
        actor_id: UUID

    class Archived(Aggregate.Event):
        actor_id: UUID
        reason: str

    @event(Requested)
    def __init__(self, title: str, prompt: str, generation_type: str, num_questions: int,
                 track: str | None, owner_id: UUID, actor_id: UUID) -> None:
        self.title = title
        self.num_questions = num_questions
        self.track = track
        self.owner_id = owner_id
        self.status = GENERATING
        self.questions: list[dict[str, Any]] = []
        self.settings = QuizSettings()

    def record_generated(self, questions: list[dict[str, Any]],
                         provenance: dict[str, Any]) -> None:
        if self.status != GENERATING:
            return  # a redelivered result: the first one stands
        require_valid(questions, self.num_questions)
        self._generated(questions=questions, provenance=provenance)

    @event(Generated)
    def _generated(self, questions: list[dict[str, Any]], provenance: dict[str, Any]) -> None:
        self.questions = questions
        self.status = DRAFT

    def record_failure(self, reason: str, provenance: dict[str, Any]) -> None:
        if self.status == GENERATING:
            self._failed(reason=reason[:2000], provenance=provenance)

    @event(GenerationFailed)
    def _failed(self, reason: str, provenance: dict[str, Any]) -> None:
        self.status = FAILED

    def edit(self, title: str, questions: list[dict[str, Any]], settings: QuizSettings,
             actor_id: UUID, reason: str) -> None:
        if self.status not in (DRAFT, PUBLISHED):
            raise Conflict(f"A {self.status} quiz cannot be edited", code="INVALID_TRANSITION",
                           status=self.status)
        require_valid(questions)
        # Corrections of a published quiz keep the question set: attempts refer to these ids.
        if self.status == PUBLISHED and (
                {q["id"] for q in questions} != {q["id"] for q in self.questions}):
            raise Conflict("A published quiz keeps its questions; correct them in place",
                               code="QUESTIONS_FIXED_AFTER_PUBLISH")
        self._edited(title=title, questions=questions, settings=settings.as_dict(),
                     actor_id=actor_id, reason=reason)

    @event(Edited)
    def _edited(self, title: str, questions: list[dict[str, Any]], settings: dict[str, Any],
                actor_id: UUID, reason: str) -> None:
        self.title = title
        self.questions = questions
        self.settings = QuizSettings.from_dict(settings)

    def publish(self, actor_id: UUID) -> None:
        if self.status == PUBLISHED:
            return
        if self.status != DRAFT:
            raise Conflict(f"A {self.status} quiz cannot be published",
                           code="INVALID_TRANSITION", status=self.status)
        self._published(actor_id=actor_id)

    @event(Published)
    def _published(self, actor_id: UUID) -> None:
        self.status = PUBLISHED

    def archive(self, actor_id: UUID, reason: str) -> None:
        if self.status != ARCHIVED:
            self._archived(actor_id=actor_id, reason=reason)

    @event(Archived)
    def _archived(self, actor_id: UUID, reason: str) -> None:
        self.status = ARCHIVED

    def grade(self, answers: dict[str, list[str]]) -> Grade:
        return grade_attempt(keys_of(self.questions), answers, self.settings.partial_credit)


@dataclass
class Layout:
    """The order a student sees: shuffled per attempt, fixed for that attempt."""

    questions: list[str] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def for_attempt(cls, quiz: Quiz, seed: str) -> Layout:
        return cls.of(quiz.questions, quiz.settings.shuffle_questions,
                      quiz.settings.shuffle_options, seed)

    @classmethod
    def of(cls, questions: list[dict[str, Any]], shuffle_questions: bool,
           shuffle_options: bool, seed: str) -> Layout:
        rng = random.Random(seed)
        order = [q["id"] for q in questions]
        if shuffle_questions:
            rng.shuffle(order)
        options = {}
        for q in questions:
            ids = [o["id"] for o in q["options"]]
            if shuffle_options:
                rng.shuffle(ids)
            options[q["id"]] = ids
        return cls(order, options)

    def arrange(self, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`questions` (with their options) in this layout's order; what a correction has
        removed since the layout was made is left out."""
        by_id = {q["id"]: q for q in questions}
        arranged = []
        for question_id in self.questions:
            question = by_id.get(question_id)
            if question is None:
                continue
            options = {o["id"]: o for o in question["options"]}
            order = self.options.get(question_id, list(options))
            arranged.append({**question,
                             "options": [options[i] for i in order if i in options]})
        return arranged


def answers_visible(status: str, settings: dict[str, Any], submitted_attempts: int) -> bool:
    """Whether a submitted attempt shows the keys and explanations, by the quiz's
    `show_answers`: at once, after the last allowed attempt, or never."""
    if status != SUBMITTED:
        return False
    policy = settings.get("show_answers")
    if policy == ShowAnswers.IMMEDIATELY.value:
        return True
    if policy == ShowAnswers.AFTER_LAST_ATTEMPT.value:
        return submitted_attempts >= int(settings.get("attempts_allowed", 1))
    return False


def seen_by(questions: list[dict[str, Any]], settings: dict[str, Any], quiz_id: UUID,
            student_id: UUID) -> list[dict[str, Any]]:
    """A quiz's questions as one student sees them before starting: in an order of their
    own when the quiz shuffles, so the stored order (an answer key, if a generator kept
    the correct option first) is never shown."""
    layout = Layout.of(questions, bool(settings.get("shuffle_questions")),
                       bool(settings.get("shuffle_options")), f"{quiz_id}:{student_id}")
    return layout.arrange(questions)


def overdue(status: str, deadline: datetime | None, now: datetime) -> bool:
    """Whether an attempt in this state must be submitted: in progress, past its time
    limit and the grace for answers still on their way."""
    return (status == IN_PROGRESS and deadline is not None
            and now > deadline + timedelta(seconds=GRACE_SECONDS))


class Attempt(Aggregate):
    class Started(Aggregate.Created):
        quiz_id: UUID
        student_id: UUID
        number: int
        question_order: list[str]
        option_order: dict[str, list[str]]
        deadline: datetime | None
        actor_id: UUID

    class AnswerSaved(Aggregate.Event):
        question_id: str
        option_ids: list[str]
        actor_id: UUID

    class Submitted(Aggregate.Event):
        score: float
        max_score: float
        per_question: dict[str, float]
        automatic: bool
        actor_id: UUID | None

    class Regraded(Aggregate.Event):
        score: float
        max_score: float
        per_question: dict[str, float]
        previous_score: float
        actor_id: UUID
        reason: str

    @staticmethod
    def id_for(quiz_id: UUID, student_id: UUID, number: int) -> UUID:
        return derived_id("attempt", f"{quiz_id}:{student_id}:{number}")

    @classmethod
    def create_id(cls, quiz_id: UUID, student_id: UUID, number: int) -> UUID:
        return cls.id_for(quiz_id, student_id, number)

    @event(Started)
    def __init__(self, quiz_id: UUID, student_id: UUID, number: int,
                 question_order: list[str], option_order: dict[str, list[str]],
                 deadline: datetime | None, actor_id: UUID) -> None:
        self.quiz_id = quiz_id
        self.student_id = student_id
        self.number = number
        self.question_order = question_order
        self.option_order = option_order
        self.deadline = deadline
        self.status = IN_PROGRESS
        self.answers: dict[str, list[str]] = {}
        self.score: float | None = None

    def is_overdue(self, now: datetime) -> bool:
        return overdue(self.status, self.deadline, now)

    def save_answer(self, quiz: Quiz, question_id: str, option_ids: list[str],
                    actor_id: UUID, now: datetime) -> None:
        if self.status != IN_PROGRESS:
            raise Conflict("The attempt is already submitted", code="ATTEMPT_SUBMITTED")
        if self.is_overdue(now):
            raise Conflict("The time limit has passed", code="ATTEMPT_EXPIRED")
        question = next((q for q in quiz.questions if q["id"] == question_id), None)
        if question is None:
            raise Invalid("No such question in this quiz", code="UNKNOWN_QUESTION")
        valid = {o["id"] for o in question["options"]}
        chosen = sorted(set(option_ids))
        if not set(chosen) <= valid:
            raise Invalid("Options must belong to the question", code="UNKNOWN_OPTION")
        if question["type"] == SINGLE and len(chosen) > 1:
            raise Invalid("Choose one option for this question", code="ONE_OPTION_ONLY")
        if self.answers.get(question_id) != chosen:
            self._answer_saved(question_id=question_id, option_ids=chosen, actor_id=actor_id)

    @event(AnswerSaved)
    def _answer_saved(self, question_id: str, option_ids: list[str], actor_id: UUID) -> None:
        self.answers[question_id] = option_ids

    def submit(self, quiz: Quiz, actor_id: UUID | None, automatic: bool) -> None:
        if self.status == SUBMITTED:
            return  # submitting twice is harmless
        grade = quiz.grade(self.answers)
        self._submitted(score=grade.score, max_score=grade.max_score,
                        per_question=grade.per_question, automatic=automatic,
                        actor_id=actor_id)

    @event(Submitted)
    def _submitted(self, score: float, max_score: float, per_question: dict[str, float],
                   automatic: bool, actor_id: UUID | None) -> None:
        self.status = SUBMITTED
        self.score = score

    def regrade(self, quiz: Quiz, actor_id: UUID, reason: str) -> Grade | None:
        """Grade again against the quiz as it is now; None if nothing changes."""
        if self.status != SUBMITTED:
            return None
        grade = quiz.grade(self.answers)
        if grade.score == self.score:
            return None
        self._regraded(score=grade.score, max_score=grade.max_score,
                       per_question=grade.per_question, previous_score=self.score or 0.0,
                       actor_id=actor_id, reason=reason)
        return grade

    @event(Regraded)
    def _regraded(self, score: float, max_score: float, per_question: dict[str, float],
                  previous_score: float, actor_id: UUID, reason: str) -> None:
        self.score = score
