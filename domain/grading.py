"""Grading rules: pure functions over questions and chosen options."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

SINGLE, MULTIPLE = "SINGLE", "MULTIPLE"


class GradingMethod(StrEnum):
    HIGHEST = "highest"
    AVERAGE = "average"
    FIRST = "first"
    LAST = "last"


@dataclass(frozen=True)
class Key:
    """What grading needs of a question: its type and its correct option ids."""

    type: str
    options: frozenset[str]
    correct: frozenset[str]
    points: float = 1.0


def score_question(key: Key, chosen: Iterable[str], partial_credit: bool) -> float:
    """The fraction (0..1) of the question's points earned by `chosen`.

    SINGLE: all or nothing. MULTIPLE without partial credit: exactly the correct set.
    MULTIPLE with partial credit: each correct option chosen earns 1/|correct|, each
    wrong option chosen costs as much, and the total is clamped to 0..1, so guessing
    everything earns nothing.
    """
    picked = frozenset(chosen) & key.options
    if key.type == SINGLE or not partial_credit:
        return 1.0 if picked == key.correct else 0.0
    if not key.correct:
        return 0.0
    right = len(picked & key.correct)
    wrong = len(picked - key.correct)
    return min(1.0, max(0.0, (right - wrong) / len(key.correct)))


@dataclass(frozen=True)
class Grade:
    score: float
    max_score: float
    per_question: dict[str, float]

    @property
    def percent(self) -> float:
        return round(100.0 * self.score / self.max_score, 2) if self.max_score else 0.0


def grade_attempt(
    keys: Mapping[str, Key], answers: Mapping[str, Sequence[str]], partial_credit: bool
) -> Grade:
    per_question = {
        qid: round(key.points * score_question(key, answers.get(qid, ()), partial_credit), 6)
        for qid, key in keys.items()
    }
    return Grade(score=round(sum(per_question.values()), 6),
                 max_score=float(sum(k.points for k in keys.values())),
                 per_question=per_question)


def combine(method: GradingMethod, percents_in_order: Sequence[float]) -> float | None:
    """The quiz grade from the attempts' percentages, oldest first."""
    if not percents_in_order:
        return None
    if method is GradingMethod.HIGHEST:
        return max(percents_in_order)
    if method is GradingMethod.FIRST:
        return percents_in_order[0]
    if method is GradingMethod.LAST:
        return percents_in_order[-1]
    return round(sum(percents_in_order) / len(percents_in_order), 2)
