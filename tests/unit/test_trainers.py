"""Trainer capacity: the limit holds in the aggregate, whatever order students arrive in."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import Conflict
from domain.trainers import MAX_STUDENTS_PER_TRAINER, TrainerCapacity


def test_capacity_takes_up_to_the_limit_then_refuses() -> None:
    admin = uuid4()
    capacity = TrainerCapacity(trainer_id=uuid4(), limit=MAX_STUDENTS_PER_TRAINER)
    students = [uuid4() for _ in range(MAX_STUDENTS_PER_TRAINER)]
    for s in students:
        capacity.take(s, actor_id=admin)
    assert capacity.load == 20
    with pytest.raises(Conflict) as error:
        capacity.take(uuid4(), actor_id=admin)
    assert error.value.code == "TRAINER_AT_CAPACITY"
    # Taking someone already there is a no-op, even when full.
    capacity.take(students[0], actor_id=admin)
    capacity.release(students[0], actor_id=admin)
    capacity.take(uuid4(), actor_id=admin)
    assert capacity.load == 20


def test_release_of_a_stranger_changes_nothing() -> None:
    capacity = TrainerCapacity(trainer_id=uuid4(), limit=2)
    capacity.collect_events()
    capacity.release(uuid4(), actor_id=uuid4())
    assert capacity.collect_events() == []


def test_capacity_id_is_derived_from_the_trainer() -> None:
    trainer = uuid4()
    assert TrainerCapacity(trainer_id=trainer, limit=1).id == TrainerCapacity.id_for(trainer)
