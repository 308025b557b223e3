"""Grading rules, including properties: score bounds and order independence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.grading import (
    MULTIPLE,
    SINGLE,
    GradingMethod,
    Key,
    combine,
    grade_attempt,
    score_question,
)

OPTIONS = ["a", "b", "c", "d", "e", "f"]


@st.composite
def keys(draw: st.DrawFn) -> Key:
    n = draw(st.integers(min_value=2, max_value=6))
    options = OPTIONS[:n]
    kind = draw(st.sampled_from([SINGLE, MULTIPLE]))
    if kind == SINGLE:
        correct = {draw(st.sampled_from(options))}
    else:
        correct = set(draw(st.lists(st.sampled_from(options), min_size=2, max_size=n,
                                    unique=True)))
    return Key(kind, frozenset(options), frozenset(correct))


chosen_lists = st.lists(st.sampled_from([*OPTIONS, "zz"]), max_size=8)


@given(keys(), chosen_lists, st.booleans())
def test_score_is_between_zero_and_one(key: Key, chosen: list[str], partial: bool) -> None:
    assert 0.0 <= score_question(key, chosen, partial) <= 1.0


@given(keys(), chosen_lists, st.booleans(), st.randoms())
def test_order_and_repetition_of_choices_do_not_matter(
    key: Key, chosen: list[str], partial: bool, rnd: object,
) -> None:
    shuffled = list(chosen) + list(chosen)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert score_question(key, chosen, partial) == score_question(key, shuffled, partial)


@given(keys(), st.booleans())
def test_the_correct_set_earns_full_marks(key: Key, partial: bool) -> None:
    assert score_question(key, key.correct, partial) == 1.0


@given(keys(), chosen_lists)
def test_partial_credit_never_scores_below_all_or_nothing(key: Key, chosen: list[str]) -> None:
    assert score_question(key, chosen, True) >= score_question(key, chosen, False)


@given(keys())
def test_choosing_everything_earns_nothing_unless_everything_is_correct(key: Key) -> None:
    score = score_question(key, key.options, partial_credit=True)
    assert score == (1.0 if key.correct == key.options else
                     max(0.0, (2 * len(key.correct) - len(key.options)) / len(key.correct)))


def test_partial_credit_examples() -> None:
    key = Key(MULTIPLE, frozenset("abcd"), frozenset("abc"))
    assert score_question(key, ["a", "b"], True) == pytest.approx(2 / 3)
    assert score_question(key, ["a", "b", "d"], True) == pytest.approx(1 / 3)
    assert score_question(key, ["a", "d"], True) == 0.0
    assert score_question(key, ["a", "b"], False) == 0.0
    assert score_question(Key(SINGLE, frozenset("ab"), frozenset("a")), ["a", "b"], True) == 0


@given(st.dictionaries(st.sampled_from(["q1", "q2", "q3", "q4"]), keys(), min_size=1),
       st.dictionaries(st.sampled_from(["q1", "q2", "q3", "q9"]), chosen_lists),
       st.booleans())
def test_attempt_grade_is_bounded_and_independent_of_question_order(
    questions: dict[str, Key], answers: dict[str, list[str]], partial: bool,
) -> None:
    grade = grade_attempt(questions, answers, partial)
    assert 0.0 <= grade.score <= grade.max_score == len(questions)
    reordered = dict(reversed(list(questions.items())))
    assert grade_attempt(reordered, dict(reversed(list(answers.items()))), partial) == grade
    assert 0.0 <= grade.percent <= 100.0


@given(st.lists(st.floats(min_value=0, max_value=100), min_size=1, max_size=10))
def test_combining_attempts(percents: list[float]) -> None:
    assert combine(GradingMethod.HIGHEST, percents) == max(percents)
    assert combine(GradingMethod.FIRST, percents) == percents[0]
    assert combine(GradingMethod.LAST, percents) == percents[-1]
    average = combine(GradingMethod.AVERAGE, percents)
    assert average is not None and min(percents) - 0.01 <= average <= max(percents) + 0.01


def test_no_attempts_no_grade() -> None:
    assert combine(GradingMethod.AVERAGE, []) is None
