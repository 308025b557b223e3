"""Payment refunds and workspace activity on the in-memory persistence, with fakes of the
gateway and the engine: given events, when a command, then the events recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.authorization import Actor, PaidAccess
from application.eventstore import EventStore
from application.payments import PaymentCommands
from application.ports import PaymentIntent, RunningContainer, WorkspaceSpec
from application.workspaces import TrackImage, WorkspaceCommands, WorkspacePolicy
from domain.errors import Forbidden
from domain.roles import Role
from domain.students import Student
from domain.workspaces import Workspace
from tests.unit.fakes import Clock

STUDENT = Actor(uuid4(), Role.STUDENT)
ADMIN = Actor(uuid4(), Role.ADMIN)


class Gateway:
    def __init__(self) -> None:
        self.refunds: list[str] = []

    def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> PaymentIntent:
        return PaymentIntent(f"pi_{uuid4().hex}", "secret")

    def refund(self, intent_id: str, idempotency_key: str) -> str:
        self.refunds.append(intent_id)
        return f"re_{uuid4().hex}"


class Engine:
    def ensure_running(self, spec: WorkspaceSpec) -> RunningContainer:
        return RunningContainer("c1", 40001)

    def wait_ready(self, host_port: int, timeout: float) -> bool:
        return True

    def stop(self, name: str) -> None: ...

    def remove(self, name: str, volume: str) -> None: ...

    def state(self, name: str) -> str | None:
        return "running"

    def managed(self) -> dict[str, str]:
        return {}


class Passwords:
    def password_for(self, student_id: UUID) -> str:
        return "pw"


@pytest.fixture
def store() -> Iterator[EventStore]:
    store = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    store.commit(Student(account_id=STUDENT.id, track="DP", actor_id=STUDENT.id))
    yield store
    store.close()


def _names(store: EventStore, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in store.events.get(aggregate_id)]


def test_a_refund_request_an_admin_rejects_leaves_the_payment_paid(store: EventStore) -> None:
    gateway = Gateway()
    payments = PaymentCommands(store, gateway, {"DP": 49900, "FSD": 59900}, "eur")
    started = payments.create_intent(STUDENT)
    intent = store.events.get(started.id).__next__().intent_id
    payments.record_provider_event("evt_1", "payment_intent.succeeded", {
        "id": intent, "amount_received": 49900, "currency": "eur"})
    payments.request_refund(STUDENT, started.id, "changed my mind")
    with pytest.raises(Forbidden):
        payments.decide_refund(STUDENT, started.id, False, "")
    payments.decide_refund(ADMIN, started.id, False, "course already taken")
    assert _names(store, started.id) == [
        "Initiated", "Succeeded", "RefundRequested", "RefundRejected"]
    assert gateway.refunds == []


def _workspaces(store: EventStore, clock: Clock) -> WorkspaceCommands:
    policy = WorkspacePolicy(images={"DP": TrackImage("superset", 8088),
                                     "FSD": TrackImage("code-server", 8080)},
                             start_timeout=5, idle_timeout=timedelta(hours=1),
                             max_age=timedelta(hours=8))
    return WorkspaceCommands(store, Engine(), Passwords(), clock, policy,  # type: ignore[arg-type]
                             PaidAccess(store, False))


def test_activity_is_recorded_at_most_every_few_minutes(store: EventStore) -> None:
    clock = Clock()
    workspaces = _workspaces(store, clock)
    workspaces.launch(STUDENT)
    workspace_id = Workspace.id_for(STUDENT.id)
    workspaces.provision(workspace_id)
    clock.at += timedelta(seconds=30)
    workspaces.seen(STUDENT.id)  # just started: too soon to say anything new
    clock.at += timedelta(minutes=10)
    workspaces.seen(STUDENT.id)
    clock.at += timedelta(seconds=30)
    workspaces.seen(STUDENT.id)
    names: list[Any] = _names(store, workspace_id)
    assert names == ["Opened", "LaunchRequested", "ProvisioningStarted", "Started",
                     "ActivitySeen"]
