"""Process-manager policies on the in-memory log: given the events, when the relay
delivers them, then the effects (mail, chat, further commands) and nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from application.accounts import AccountCommands
from application.authorization import Actor
from application.eventstore import EventStore
from application.payments import PaymentCommands
from application.ports import GeneratedQuestions, GenerationError, PaymentIntent
from application.processes import MailPolicies, PaymentPolicies, Policy, QuizPolicies
from application.quizzes import QuizCommands
from domain.quizzes import Quiz
from domain.roles import Role, Track
from domain.students import Student
from tests.unit.fakes import (
    Attempts,
    Clock,
    Credentials,
    Hasher,
    Mailbox,
    OneTime,
    Sessions,
    in_memory_store,
)

PASSWORD = "correct horse battery staple"


class Chat:
    def __init__(self) -> None:
        self.posts: list[str] = []

    def post(self, text: str) -> None:
        self.posts.append(text)


def deliver(store: EventStore, policies: list[Policy], after: int = 0) -> int:
    """What the relay and a worker do: every logged event to each policy that wants it."""
    last = after
    for notification in store.recorder.select_notifications(start=after + 1, limit=10_000):
        event = store.mapper.to_domain_event(notification)
        for policy in policies:
            if isinstance(event, policy.events):
                policy.handle(event)
        last = notification.id
    return last


@pytest.fixture
def store() -> Iterator[EventStore]:
    with in_memory_store() as store:
        yield store


def test_registration_mails_a_welcome_and_a_verification_link(store: EventStore) -> None:
    mail, one_time = Mailbox(), OneTime()
    accounts = AccountCommands(store, Credentials(), Hasher(), Sessions())
    accounts.register_student("fay@example.com", "Fay", PASSWORD, Track.DATA_PROFESSIONAL)
    policies = MailPolicies(store, mail, one_time, "https://lms.example").policies()
    seen = deliver(store, policies)
    assert sorted(mail.subjects("fay@example.com")) == [
        "Confirm your email address", "Welcome to ApraNova"]
    assert "Data Professional" in next(m.body for m in mail.sent if "Welcome" in m.subject)
    [key] = one_time.keys  # the link's key, kept outside the log
    assert f"https://lms.example/api/auth/verify-email/{key}/" in next(
        m.body for m in mail.sent if "Confirm" in m.subject)
    # A second registration with the address: its owner is told, nobody else.
    accounts.register_student("fay@example.com", "Mallory", PASSWORD, Track.FULL_STACK)
    deliver(store, policies, seen)
    assert mail.subjects("fay@example.com")[-1] == (
        "Someone tried to register with your email address")


def test_a_payment_opens_the_track_and_is_announced(store: EventStore) -> None:
    accounts = AccountCommands(store, Credentials(), Hasher(), Sessions())
    account = accounts.register_student("gus@example.com", "Gus", PASSWORD,
                                        Track.FULL_STACK).account_id
    student = Actor(account, Role.STUDENT)

    class Gateway:
        def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                          idempotency_key: str) -> PaymentIntent:
            return PaymentIntent("pi_1", "secret")

        def refund(self, intent_id: str, idempotency_key: str) -> str:
            return "re_1"

    payments = PaymentCommands(store, Gateway(), {"DP": 100, "FSD": 200}, "eur")
    started = payments.create_intent(student)
    payments.record_provider_event("evt_1", "payment_intent.succeeded",
                                   {"id": "pi_1", "amount_received": 200, "currency": "eur"})
    chat = Chat()
    deliver(store, PaymentPolicies(payments, store, chat).policies())
    assert store.load(Student, Student.id_for(account)).paid_by == started.id
    assert any("Payment received: 2.00" in post and "Gus" in post for post in chat.posts)


def test_generation_records_questions_or_the_reason_it_failed(store: EventStore) -> None:
    quizzes = QuizCommands(store, Clock(), Attempts())
    trainer = Actor(uuid4(), Role.TRAINER)
    good = quizzes.request(trainer, "Joins", "SQL joins", "PROMPT", 1, "DP").id
    question = {"text": "Which join keeps every left row?", "type": "SINGLE",
                "explanation": "LEFT JOIN", "options": [
                    {"text": "LEFT JOIN", "correct": True}, {"text": "INNER JOIN",
                                                             "correct": False}]}

    class Generator:
        def __init__(self, outcome: Any) -> None:
            self.outcome = outcome

        def generate(self, request: Any) -> GeneratedQuestions:
            if isinstance(self.outcome, Exception):
                raise self.outcome
            return GeneratedQuestions([question], {"generator": "fake"})

    seen = deliver(store, QuizPolicies(quizzes, Generator(None)).policies())
    assert store.load(Quiz, good).status == "draft"
    failed = quizzes.request(trainer, "Joins", "SQL joins", "PROMPT", 1, "DP").id
    broken = quizzes.request(trainer, "Joins", "SQL joins", "PROMPT", 1, "DP").id
    deliver(store, QuizPolicies(quizzes, Generator(
        GenerationError("the model refused", {"generator": "fake"}))).policies(), seen)
    assert store.load(Quiz, failed).status == "failed"
    assert store.load(Quiz, broken).status == "failed"
