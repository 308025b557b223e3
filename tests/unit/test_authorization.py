"""The read side's rules: whose records each kind of principal may see."""

from __future__ import annotations

from uuid import uuid4

import pytest

from application.authorization import (
    Actor,
    authors_quiz,
    follows_a_track,
    may_author_quizzes,
    may_see_learner,
    may_see_payment,
    trainer_scope,
)
from domain.roles import Role

LEARNER, TRAINER, OTHER = uuid4(), uuid4(), uuid4()


@pytest.mark.parametrize(("actor", "sees"), [
    (Actor(LEARNER, Role.STUDENT), True),
    (Actor(OTHER, Role.STUDENT), False),
    (Actor(TRAINER, Role.TRAINER), True),
    (Actor(OTHER, Role.TRAINER), False),
    (Actor(OTHER, Role.ADMIN), True),
    (Actor(OTHER, Role.SUPERADMIN), True),
    (Actor(OTHER, Role.AUDITOR), True),
    (Actor(OTHER, Role.ANALYST), False),
])
def test_a_learners_records_are_theirs_their_trainers_and_overseers(actor: Actor,
                                                                    sees: bool) -> None:
    assert may_see_learner(actor, LEARNER, TRAINER) is sees


def test_payments_quizzes_and_trainer_scopes() -> None:
    assert may_see_payment(Actor(LEARNER, Role.STUDENT), LEARNER)
    assert not may_see_payment(Actor(OTHER, Role.STUDENT), LEARNER)
    assert not may_see_payment(Actor(TRAINER, Role.TRAINER), LEARNER)
    assert may_see_payment(Actor(OTHER, Role.AUDITOR), LEARNER)
    assert may_author_quizzes(Role.TRAINER) and not may_author_quizzes(Role.STUDENT)
    assert not may_author_quizzes(Role.ANALYST)
    assert authors_quiz(Actor(TRAINER, Role.TRAINER), TRAINER)
    assert not authors_quiz(Actor(OTHER, Role.TRAINER), TRAINER)
    assert authors_quiz(Actor(OTHER, Role.ADMIN), TRAINER)
    assert trainer_scope(Actor(TRAINER, Role.TRAINER)) == TRAINER
    assert trainer_scope(Actor(OTHER, Role.ADMIN)) is None


def test_only_students_follow_a_track() -> None:
    assert follows_a_track("student") and follows_a_track(Role.STUDENT)
    assert not any(follows_a_track(r) for r in Role if r is not Role.STUDENT)
