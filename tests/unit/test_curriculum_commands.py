"""A student's way through the shipped curriculum on the in-memory log: start, steps,
submission, files, review, the next project opening; paid access shut by a refund."""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from application.authorization import Actor, PaidAccess
from application.curriculum import CurriculumCommands
from application.eventstore import EventStore
from application.ports import StoredFile
from domain.errors import Conflict, Forbidden, Invalid, NotFound, PaymentRequired
from domain.roles import Role
from domain.students import Student
from infrastructure.settings import CONTENT
from tests.unit.fakes import event_names, in_memory_store

STUDENT = Actor(uuid4(), Role.STUDENT)
TRAINER = Actor(uuid4(), Role.TRAINER)
OTHER_TRAINER = Actor(uuid4(), Role.TRAINER)
P1, P2 = "dp-01-sql-foundations", "dp-02-python-data-wrangling"
DELIVERABLES = {"repository": "https://github.com/ada/sql-foundations",
                "findings_summary": "Revenue peaks in Q4."}


class Files:
    def __init__(self) -> None:
        self.kept: dict[str, bytes] = {}

    def put(self, chunks: Iterable[bytes], max_bytes: int) -> StoredFile:
        data = b"".join(chunks)
        digest = hashlib.sha256(data).hexdigest()
        self.kept[digest] = data
        return StoredFile(digest, len(data), data[:512])

    def path(self, sha256: str) -> Path | None:
        return None


def _curriculum(store: EventStore, required: bool) -> CurriculumCommands:
    commands = CurriculumCommands(store, Files(), 1 << 20, PaidAccess(store, required))
    with (CONTENT / "curriculum.toml").open("rb") as f:
        commands.publish(tomllib.load(f), None, "shipped")
    student = Student(account_id=STUDENT.id, track="DP", actor_id=STUDENT.id)
    student.assign_trainer(TRAINER.id, None, actor_id=STUDENT.id)
    store.commit(student)
    return commands


@pytest.fixture
def store() -> Iterator[EventStore]:
    with in_memory_store() as store:
        yield store


def test_approval_of_project_one_opens_project_two(store: EventStore) -> None:
    curriculum = _curriculum(store, required=False)
    with pytest.raises((Conflict, Invalid)):
        curriculum.start_project(STUDENT, P2)  # locked
    curriculum.start_project(STUDENT, P1)
    curriculum.set_step(STUDENT, P1, 1, True)
    created = curriculum.create_submission(STUDENT, P1, DELIVERABLES, True, "ready")
    with pytest.raises(Conflict):
        curriculum.create_submission(STUDENT, P1, DELIVERABLES, True, "again")
    with pytest.raises(NotFound):  # not this trainer's student
        curriculum.review(OTHER_TRAINER, created.id, "start_review", "", {})
    curriculum.review(TRAINER, created.id, "start_review", "", {})
    curriculum.review(TRAINER, created.id, "request_changes", "More detail.", {"sql": 3})
    curriculum.update_submission(STUDENT, created.id, {"findings_summary": "Q4 and why."},
                                 True, "fixed")
    curriculum.review(TRAINER, created.id, "approve", "Well argued.", {"sql": 5})
    assert event_names(store, created.id)[-1] == "Approved"
    curriculum.start_project(STUDENT, P2)  # open now


def test_a_file_deliverable_is_stored_outside_the_log(store: EventStore) -> None:
    curriculum = _curriculum(store, required=False)
    curriculum.start_project(STUDENT, P1)
    created = curriculum.create_submission(STUDENT, P1, {"repository": DELIVERABLES[
        "repository"]}, False, "")
    with pytest.raises(NotFound):
        curriculum.attach_file(STUDENT, created.id, "no-such-key", "a.txt", [b"x"])
    with pytest.raises((Invalid, NotFound)):  # not a file deliverable
        curriculum.attach_file(STUDENT, created.id, "repository", "a.txt", [b"x"])
    with pytest.raises(NotFound):  # someone else's submission
        curriculum.attach_file(Actor(uuid4(), Role.STUDENT), created.id, "repository",
                               "a.txt", [b"x"])


def test_without_payment_the_track_stays_shut(store: EventStore) -> None:
    curriculum = _curriculum(store, required=True)
    with pytest.raises(PaymentRequired):
        curriculum.start_project(STUDENT, P1)
    with pytest.raises(Forbidden):  # staff follow no track
        curriculum.start_project(TRAINER, P1)
    assert curriculum.publish({**tomllib.loads((CONTENT / "curriculum.toml").read_text())},
                              None, "unchanged") == 0
