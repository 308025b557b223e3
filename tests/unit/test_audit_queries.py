"""Auditors' questions on the in-memory log: given an aggregate's events (recorded through
the payment and curriculum commands), when its history or its state at a version or a
moment is asked for, then the entries, the state returned or the error raised."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.audit import AuditQueries, event_data, plain
from application.authorization import Actor, PaidAccess
from application.curriculum import CurriculumCommands
from application.eventstore import EventStore
from application.payments import PaymentCommands
from application.ports import PaymentIntent, StoredFile
from domain.curriculum import Curriculum
from domain.errors import DomainError, NotFound
from domain.registry import AGGREGATES
from domain.roles import Role, Track
from domain.students import Student
from infrastructure.settings import CONTENT
from tests.unit.fakes import in_memory_store

STUDENT = Actor(uuid4(), Role.STUDENT)
ADMIN = Actor(uuid4(), Role.ADMIN)


class Gateway:
    def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> PaymentIntent:
        return PaymentIntent("pi_audited", "secret")

    def refund(self, intent_id: str, idempotency_key: str) -> str:
        return "re_audited"


class Files:
    def put(self, chunks: Any, max_bytes: int) -> StoredFile:
        raise AssertionError("no files in these tests")

    def path(self, sha256: str) -> None:
        return None


@dataclass
class World:
    store: EventStore
    audit: AuditQueries
    payments: PaymentCommands

    def events(self, aggregate_id: UUID) -> list[Any]:
        return list(self.store.events.get(aggregate_id))

    def refund_requested(self) -> UUID:
        """Given: a student's payment that succeeded and whose refund they asked for:
        Initiated (v1), Succeeded (v2), RefundRequested (v3)."""
        payment_id = self.payments.create_intent(STUDENT).id
        self.payments.record_provider_event("evt_1", "payment_intent.succeeded", {
            "id": "pi_audited", "amount_received": 49900, "currency": "eur"})
        self.payments.request_refund(STUDENT, payment_id, "changed my mind")
        return payment_id


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        store.commit(Student(account_id=STUDENT.id, track=Track.DATA_PROFESSIONAL.value,
                             actor_id=STUDENT.id))
        payments = PaymentCommands(store, Gateway(), {"DP": 49900, "FSD": 59900}, "eur")
        yield World(store, AuditQueries(store), payments)


def refused(error: pytest.ExceptionInfo[DomainError], code: str) -> None:
    assert type(error.value) is NotFound
    assert error.value.code == code


# -- history ---------------------------------------------------------------------------------

def test_a_history_lists_every_event_with_who_caused_it_and_why(world: World) -> None:
    payment_id = world.refund_requested()
    events = world.events(payment_id)
    history = world.audit.history("payment", payment_id)
    assert [(h["version"], h["event"]) for h in history] == [
        (1, "Initiated"), (2, "Succeeded"), (3, "RefundRequested")]
    assert [h["at"] for h in history] == [e.timestamp.isoformat() for e in events]
    assert [h["actor_id"] for h in history] == [str(STUDENT.id), None, str(STUDENT.id)]
    assert [h["reason"] for h in history] == [None, None, "changed my mind"]


def test_a_history_entry_holds_the_events_own_fields_as_plain_values(world: World) -> None:
    payment_id = world.refund_requested()
    initiated, succeeded, requested = world.audit.history("payment", payment_id)
    assert initiated["data"] == {
        "student_id": str(STUDENT.id), "track": "DP", "amount": 49900, "currency": "eur",
        "intent_id": "pi_audited", "actor_id": str(STUDENT.id)}
    assert succeeded["data"] == {"provider_event_id": "evt_1", "amount_received": 49900,
                                 "currency": "eur"}
    assert requested["data"] == {"actor_id": str(STUDENT.id), "reason": "changed my mind"}
    json.dumps(world.audit.history("payment", payment_id))  # all of it JSON-friendly


def test_a_history_gives_a_note_as_the_reason_when_an_event_has_no_reason(
        world: World) -> None:
    commands = CurriculumCommands(world.store, Files(), 1 << 20,
                                  PaidAccess(world.store, False))
    with (CONTENT / "curriculum.toml").open("rb") as f:
        commands.publish(tomllib.load(f), ADMIN.id, "the first syllabus")
    started, published = world.audit.history("curriculum", Curriculum.ID)
    assert (started["event"], started["reason"], started["actor_id"]) == (
        "Started", None, None)
    assert (published["event"], published["reason"], published["actor_id"]) == (
        "VersionPublished", "the first syllabus", str(ADMIN.id))


def test_an_empty_reason_is_no_reason(world: World) -> None:
    payment_id = world.refund_requested()
    world.payments.decide_refund(ADMIN, payment_id, False, "")
    assert world.audit.history("payment", payment_id)[-1]["reason"] is None


@pytest.mark.parametrize("query", ["history", "state"])
@pytest.mark.parametrize("aggregate_type", [
    "payments", "Payment", "", "__class__", "get", "payment\x00", "pay\ud800ment"])
def test_an_unknown_aggregate_type_is_not_found_with_the_known_ones(
        world: World, query: str, aggregate_type: str) -> None:
    payment_id = world.refund_requested()
    with pytest.raises(NotFound) as error:
        getattr(world.audit, query)(aggregate_type, payment_id)
    refused(error, "UNKNOWN_AGGREGATE_TYPE")
    assert error.value.details["known"] == sorted(AGGREGATES)
    assert "payment" in error.value.details["known"]


@pytest.mark.parametrize("query", ["history", "state"])
def test_an_id_with_no_events_is_not_found(world: World, query: str) -> None:
    with pytest.raises(NotFound) as error:
        getattr(world.audit, query)("payment", uuid4())
    refused(error, "NOT_FOUND")


@pytest.mark.parametrize("query", ["history", "state"])
@pytest.mark.parametrize("asked_as", ["student", "account", "curriculum"])
def test_an_aggregate_asked_for_as_another_type_is_not_found(
        world: World, query: str, asked_as: str) -> None:
    payment_id = world.refund_requested()
    with pytest.raises(NotFound) as error:
        getattr(world.audit, query)(asked_as, payment_id)
    refused(error, "NOT_FOUND")
    assert asked_as in error.value.message


# -- state -----------------------------------------------------------------------------------

def test_the_state_is_the_latest_when_no_version_or_time_is_given(world: World) -> None:
    payment_id = world.refund_requested()
    answer = world.audit.state("payment", payment_id)
    assert (answer["type"], answer["id"], answer["version"]) == (
        "payment", str(payment_id), 3)
    assert answer["as_of"] == world.events(payment_id)[-1].timestamp.isoformat()
    assert answer["state"] == {
        "student_id": str(STUDENT.id), "track": "DP", "amount": 49900, "currency": "eur",
        "intent_id": "pi_audited", "status": "succeeded", "seen": ["evt_1"],
        "refund": "requested"}
    json.dumps(answer)


def test_the_state_at_a_version_is_the_aggregate_as_it_was_then(world: World) -> None:
    payment_id = world.refund_requested()
    answer = world.audit.state("payment", payment_id, version=1)
    assert answer["version"] == 1
    assert answer["as_of"] == world.events(payment_id)[0].timestamp.isoformat()
    assert (answer["state"]["status"], answer["state"]["seen"],
            answer["state"]["refund"]) == ("requires_payment", [], "none")
    assert world.audit.state("payment", payment_id, version=2)["state"]["status"] == (
        "succeeded")


def test_the_state_shows_enums_by_value_and_sets_sorted(world: World) -> None:
    student_id = Student.id_for(STUDENT.id)
    for payment in (uuid4(), uuid4()):
        enrolment = world.store.load(Student, student_id)
        enrolment.revoke_access(payment, reason="refunded")
        world.store.commit(enrolment)
    state = world.audit.state("student", student_id)["state"]
    assert state["track"] == "DP"
    assert state["revoked"] == sorted(state["revoked"])
    assert len(state["revoked"]) == 2
    assert all(isinstance(r, str) for r in state["revoked"])


@pytest.mark.parametrize("version", [0, -1, 4, 10**9])
def test_a_version_outside_the_history_is_not_found(world: World, version: int) -> None:
    payment_id = world.refund_requested()
    with pytest.raises(NotFound) as error:
        world.audit.state("payment", payment_id, version=version)
    refused(error, "NO_SUCH_VERSION")
    assert "the latest is 3" in error.value.message


def test_the_state_at_a_moment_is_as_of_the_last_event_up_to_it(world: World) -> None:
    payment_id = world.refund_requested()
    first, second, third = (e.timestamp for e in world.events(payment_id))
    assert first < second < third
    at_second = world.audit.state("payment", payment_id, at=second)
    assert (at_second["version"], at_second["as_of"]) == (2, second.isoformat())
    just_before = world.audit.state("payment", payment_id,
                                    at=second - timedelta(microseconds=1))
    assert (just_before["version"], just_before["state"]["status"]) == (
        1, "requires_payment")
    assert world.audit.state("payment", payment_id,
                             at=datetime.now(UTC) + timedelta(days=1))["version"] == 3


def test_a_moment_is_compared_as_an_instant_whatever_its_offset(world: World) -> None:
    payment_id = world.refund_requested()
    second = world.events(payment_id)[1].timestamp
    elsewhere = second.astimezone(timezone(timedelta(hours=-5)))
    assert world.audit.state("payment", payment_id, at=elsewhere)["version"] == 2


def test_a_moment_before_the_aggregate_existed_is_not_found(world: World) -> None:
    payment_id = world.refund_requested()
    first = world.events(payment_id)[0].timestamp
    with pytest.raises(NotFound) as error:
        world.audit.state("payment", payment_id, at=first - timedelta(microseconds=1))
    refused(error, "NOT_YET_EXISTING")


def test_a_moment_given_with_a_version_decides_the_version(world: World) -> None:
    payment_id = world.refund_requested()
    first = world.events(payment_id)[0].timestamp
    assert world.audit.state("payment", payment_id, version=3, at=first)["version"] == 1


# -- plain values ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rubric:
    score: int
    reviewer: UUID


def test_plain_values_are_json_friendly_and_stable() -> None:
    some, other = UUID(int=2), UUID(int=1)
    moment = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
    value = {1: moment, "track": Track.FULL_STACK, "ids": frozenset({some, other}),
             "tags": {"b", "a"}, "rubric": Rubric(3, some), "pair": (other, [moment])}
    assert plain(value) == {
        "1": "2026-11-24T09:00:00+00:00", "track": "FSD",
        "ids": [str(other), str(some)], "tags": ["a", "b"],
        "rubric": {"score": 3, "reviewer": str(some)},
        "pair": [str(other), ["2026-11-24T09:00:00+00:00"]]}
    assert plain(Rubric) is Rubric  # a class is not a dataclass value


def test_event_data_leaves_out_the_libraries_envelope(world: World) -> None:
    payment_id = world.refund_requested()
    data = event_data(world.events(payment_id)[1])
    assert not {"originator_id", "originator_version", "timestamp",
                "originator_topic"} & set(data)
    assert data["provider_event_id"] == "evt_1"
