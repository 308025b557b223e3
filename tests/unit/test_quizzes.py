"""Question rules and the Quiz and Attempt aggregates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from application.quizzes import with_ids
from domain.errors import Conflict, Invalid
from domain.quizzes import (
    Attempt,
    Layout,
    Quiz,
    QuizSettings,
    answers_visible,
    question_problems,
    seen_by,
)

TRAINER, STUDENT = uuid4(), uuid4()


def q(text: str, kind: str = "SINGLE", correct: tuple[int, ...] = (0,), n: int = 4
      ) -> dict[str, Any]:
    return {"text": text, "type": kind, "explanation": "because",
            "options": [{"text": f"{text} option {i}", "correct": i in correct}
                        for i in range(n)]}


GOOD = [q("What does SELECT do?"), q("Which are SQL joins?", "MULTIPLE", (0, 1)),
        q("What is an index for?")]


def test_valid_questions_have_no_problems() -> None:
    assert question_problems(GOOD, 3) == []


@pytest.mark.parametrize(("questions", "expected", "fragment"), [
    (GOOD, 4, "expected 4 questions"),
    ([q("Only one option?", n=1)], None, "2 to 6 options"),
    ([q("Seven options?", n=7)], None, "2 to 6 options"),
    ([q("Two right for single?", correct=(0, 1))], None, "exactly one correct"),
    ([q("One right for multiple?", "MULTIPLE", (0,))], None, "at least two correct"),
    ([q("All right for multiple?", "MULTIPLE", (0, 1, 2, 3))], None, "one incorrect"),
    ([{**q("Duplicate options?"), "options": [{"text": "A", "correct": True},
                                              {"text": "a ", "correct": False}]}],
     None, "duplicate options"),
    ([q("What does SELECT do?"), q("What does SELECT do ?")], None, "repeats"),
    ([q("What does the SELECT statement do?"), q("What does the SELECT statement do")],
     None, "repeats"),
    ([], None, "1 to 50"),
    ([q("Long?") | {"text": "Why " + "so " * 700 + "long?"}], None, "longer than 2000"),
    ([q("Long explanation?") | {"explanation": "x" * 2001}], None, "an explanation"),
    ([{**q("Correct as text?"), "options": [{"text": "A", "correct": "true"},
                                            {"text": "B", "correct": False}]}],
     None, "not true or false"),
    ([{**q("Option text a number?"), "options": [{"text": 1, "correct": True},
                                                 {"text": "B", "correct": False}]}],
     None, "option whose text"),
    (["Not an object"], None, "question 1 is not an object"),
])
def test_question_problems(questions: list[dict[str, Any]], expected: int | None,
                           fragment: str) -> None:
    assert any(fragment in p for p in question_problems(questions, expected))


def test_near_duplicates_of_full_length_texts_are_found_and_distinct_ones_pass() -> None:
    long = "Which clause of the statement filters the rows " + "and " * 480 + "why?"
    assert any("repeats" in p for p in question_problems([q(long), q(long + "!")], None))
    letters = random.Random(7)
    distinct = [q("".join(chr(0x4E00 + letters.randrange(5000)) for _ in range(1900)))
                for _ in range(10)]
    assert question_problems(distinct, None) == []


def published_quiz(**settings: Any) -> Quiz:
    quiz = Quiz(title="SQL", prompt="sql basics", generation_type="PROMPT", num_questions=3,
                track="DP", owner_id=TRAINER, actor_id=TRAINER)
    quiz.record_generated(with_ids(GOOD), {"generator": "test"})
    if settings:
        quiz.edit(quiz.title, quiz.questions, QuizSettings(**settings), actor_id=TRAINER,
                  reason="settings")
    quiz.publish(actor_id=TRAINER)
    return quiz


def test_generation_result_is_recorded_once_and_must_be_valid() -> None:
    quiz = Quiz(title="SQL", prompt="p", generation_type="PROMPT", num_questions=3,
                track=None, owner_id=TRAINER, actor_id=TRAINER)
    with pytest.raises(Invalid):
        quiz.record_generated(with_ids(GOOD[:2]), {})
    quiz.record_generated(with_ids(GOOD), {"generator": "test"})
    quiz.record_generated(with_ids(GOOD[:1]), {})  # redelivery: ignored
    quiz.record_failure("late failure", {})
    assert quiz.status == "draft" and len(quiz.questions) == 3


def test_published_quiz_keeps_its_question_ids() -> None:
    quiz = published_quiz()
    changed = [dict(x) for x in quiz.questions]
    changed[0] = {**changed[0], "id": "qnew0000"}
    with pytest.raises(Conflict) as error:
        quiz.edit(quiz.title, changed, quiz.settings, actor_id=TRAINER, reason="x")
    assert error.value.code == "QUESTIONS_FIXED_AFTER_PUBLISH"
    with pytest.raises(Conflict):
        Quiz(title="t", prompt="p", generation_type="PROMPT", num_questions=1, track=None,
             owner_id=TRAINER, actor_id=TRAINER).publish(actor_id=TRAINER)


def test_settings_are_bounded() -> None:
    with pytest.raises(Invalid):
        QuizSettings(time_limit_seconds=5)
    with pytest.raises(Invalid):
        QuizSettings(attempts_allowed=0)
    with pytest.raises(Invalid):
        QuizSettings.from_dict({"grading_method": "median"})


def start(quiz: Quiz, now: datetime, number: int = 1) -> Attempt:
    layout = Layout.for_attempt(quiz, f"seed-{number}")
    limit = quiz.settings.time_limit_seconds
    return Attempt(quiz_id=quiz.id, student_id=STUDENT, number=number,
                   question_order=layout.questions, option_order=layout.options,
                   deadline=now + timedelta(seconds=limit) if limit else None,
                   actor_id=STUDENT)


def test_answers_are_checked_last_write_wins_and_submit_is_idempotent() -> None:
    quiz = published_quiz()
    now = datetime.now(UTC)
    attempt = start(quiz, now)
    single, multiple = quiz.questions[0], quiz.questions[1]
    opts = [o["id"] for o in single["options"]]
    with pytest.raises(Invalid):
        attempt.save_answer(quiz, single["id"], opts[:2], actor_id=STUDENT, now=now)
    with pytest.raises(Invalid):
        attempt.save_answer(quiz, single["id"], ["oforeign"], actor_id=STUDENT, now=now)
    with pytest.raises(Invalid):
        attempt.save_answer(quiz, "qmissing", [], actor_id=STUDENT, now=now)
    attempt.save_answer(quiz, single["id"], [opts[1]], actor_id=STUDENT, now=now)
    attempt.save_answer(quiz, single["id"], [opts[0]], actor_id=STUDENT, now=now)
    attempt.save_answer(quiz, single["id"], [opts[0]], actor_id=STUDENT, now=now)
    right = [o["id"] for o in multiple["options"] if o["correct"]]
    attempt.save_answer(quiz, multiple["id"], right, actor_id=STUDENT, now=now)
    attempt.submit(quiz, actor_id=STUDENT, automatic=False)
    attempt.submit(quiz, actor_id=STUDENT, automatic=False)
    events = attempt.collect_events()
    assert [type(e).__name__ for e in events].count("Submitted") == 1
    assert [type(e).__name__ for e in events].count("AnswerSaved") == 3
    assert attempt.score == 2.0
    with pytest.raises(Conflict):
        attempt.save_answer(quiz, single["id"], [opts[1]], actor_id=STUDENT, now=now)


def test_time_limit_with_grace() -> None:
    quiz = published_quiz(time_limit_seconds=60)
    now = datetime.now(UTC)
    attempt = start(quiz, now)
    assert not attempt.is_overdue(now + timedelta(seconds=64))
    assert attempt.is_overdue(now + timedelta(seconds=66))
    with pytest.raises(Conflict) as error:
        attempt.save_answer(quiz, quiz.questions[0]["id"], [], actor_id=STUDENT,
                            now=now + timedelta(seconds=70))
    assert error.value.code == "ATTEMPT_EXPIRED"


def test_shuffled_layouts_are_permutations_fixed_by_seed() -> None:
    quiz = published_quiz(shuffle_questions=True, shuffle_options=True)
    a, b = Layout.for_attempt(quiz, "s1"), Layout.for_attempt(quiz, "s1")
    assert a == b
    assert sorted(a.questions) == sorted(x["id"] for x in quiz.questions)
    for question in quiz.questions:
        assert sorted(a.options[question["id"]]) == sorted(o["id"] for o in question["options"])


def test_before_starting_each_student_sees_an_order_of_their_own_when_shuffling() -> None:
    # Stored with the correct option first, as a generator once kept them.
    questions = with_ids([q(f"Question {i}") for i in range(200)])
    settings = {"shuffle_questions": False, "shuffle_options": True}
    quiz_id = uuid4()
    first_right = sum(shown["options"][0]["correct"]
                      for shown in seen_by(questions, settings, quiz_id, STUDENT))
    assert 20 <= first_right <= 80  # about 1 in 4 of 200, not all of them
    again = seen_by(questions, settings, quiz_id, STUDENT)
    assert again == seen_by(questions, settings, quiz_id, STUDENT)  # stable per student
    assert again != seen_by(questions, settings, quiz_id, uuid4())
    assert [sorted(o["id"] for o in x["options"]) for x in again] == [
        sorted(o["id"] for o in x["options"]) for x in questions]
    # Without shuffling, the stored order is the order shown.
    assert seen_by(questions, {}, quiz_id, STUDENT) == questions


def test_regrade_after_a_correction() -> None:
    quiz = published_quiz()
    now = datetime.now(UTC)
    attempt = start(quiz, now)
    first = quiz.questions[0]
    wrong = next(o["id"] for o in first["options"] if not o["correct"])
    attempt.save_answer(quiz, first["id"], [wrong], actor_id=STUDENT, now=now)
    attempt.submit(quiz, actor_id=STUDENT, automatic=False)
    assert attempt.score == 0.0
    corrected = [dict(x) for x in quiz.questions]
    corrected[0] = {**first, "options": [{**o, "correct": o["id"] == wrong}
                                         for o in first["options"]]}
    quiz.edit(quiz.title, corrected, quiz.settings, actor_id=TRAINER, reason="key was wrong")
    grade = attempt.regrade(quiz, actor_id=TRAINER, reason="key was wrong")
    assert grade is not None and attempt.score == 1.0
    assert attempt.regrade(quiz, actor_id=TRAINER, reason="again") is None


@pytest.mark.parametrize(("status", "policy", "allowed", "submitted", "visible"), [
    ("in_progress", "immediately", 1, 0, False),
    ("submitted", "immediately", 3, 1, True),
    ("submitted", "after_last_attempt", 3, 2, False),
    ("submitted", "after_last_attempt", 3, 3, True),
    ("submitted", "never", 1, 1, False),
])
def test_answers_show_by_the_quizs_policy(status: str, policy: str, allowed: int,
                                          submitted: int, visible: bool) -> None:
    settings = {"show_answers": policy, "attempts_allowed": allowed}
    assert answers_visible(status, settings, submitted) is visible
