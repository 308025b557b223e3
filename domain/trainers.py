"""Trainer capacity: the consistency boundary for "at most N students per trainer".

Every assignment to a trainer appends to that trainer's capacity stream, so two
concurrent assignments contend on one aggregate version and one of them must retry
against the new state; the limit cannot be overshot.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict
from domain.ids import derived_id

MAX_STUDENTS_PER_TRAINER = 20


class TrainerCapacity(Aggregate):
    class Opened(Aggregate.Created):
        trainer_id: UUID
        limit: int

    class StudentTaken(Aggregate.Event):
        student_account_id: UUID
        actor_id: UUID

    class StudentReleased(Aggregate.Event):
        student_account_id: UUID
        actor_id: UUID

    @staticmethod
    def id_for(trainer_id: UUID) -> UUID:
        return derived_id("trainer-capacity", trainer_id)

    @classmethod
    def create_id(cls, trainer_id: UUID, limit: int) -> UUID:
        return cls.id_for(trainer_id)

    @event(Opened)
    def __init__(self, trainer_id: UUID, limit: int) -> None:
        self.trainer_id = trainer_id
        self.limit = limit
        self.students: set[UUID] = set()

    @property
    def load(self) -> int:
        return len(self.students)

    def take(self, student_account_id: UUID, actor_id: UUID) -> None:
        if student_account_id in self.students:
            return
        if self.load >= self.limit:
            raise Conflict(
                f"The trainer already has {self.limit} students",
                code="TRAINER_AT_CAPACITY",
                limit=self.limit,
            )
        self._taken(student_account_id=student_account_id, actor_id=actor_id)

    @event(StudentTaken)
    def _taken(self, student_account_id: UUID, actor_id: UUID) -> None:
        self.students.add(student_account_id)

    def release(self, student_account_id: UUID, actor_id: UUID) -> None:
        if student_account_id in self.students:
            self._released(student_account_id=student_account_id, actor_id=actor_id)

    @event(StudentReleased)
    def _released(self, student_account_id: UUID, actor_id: UUID) -> None:
        self.students.discard(student_account_id)
