"""Payment commands on the in-memory log with a fake of the payment provider: given a
student and their payment's events, when a command (an intent, a webhook delivery, a
refund request or decision, a process manager's follow-up), then the events recorded,
the value returned, the error raised or the calls made on the provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.authorization import Actor
from application.eventstore import EventStore
from application.payments import PaymentCommands, PaymentsNotConfigured
from application.ports import PaymentIntent
from domain.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from domain.payments import Payment
from domain.roles import Role, Track
from domain.students import Student
from tests.unit.fakes import event_names, in_memory_store

PRICES = {"DP": 49900, "FSD": 59900}
SUCCEEDED, FAILED, REFUNDED = (
    "payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded")


class Gateway:
    """A provider that hands out intents and refunds and remembers what it was asked."""

    def __init__(self) -> None:
        self.intents: list[tuple[int, str, dict[str, str], str]] = []
        self.refunds: list[tuple[str, str]] = []

    def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> PaymentIntent:
        self.intents.append((amount, currency, metadata, idempotency_key))
        return PaymentIntent(f"pi_{uuid4().hex}", f"secret_{len(self.intents)}")

    def refund(self, intent_id: str, idempotency_key: str) -> str:
        self.refunds.append((intent_id, idempotency_key))
        return f"re_{len(self.refunds)}"


@dataclass
class World:
    store: EventStore
    gateway: Gateway
    payments: PaymentCommands

    def student(self, track: Track = Track.DATA_PROFESSIONAL) -> Actor:
        actor = Actor(uuid4(), Role.STUDENT)
        self.store.commit(Student(account_id=actor.id, track=track.value,
                                  actor_id=actor.id))
        return actor

    def intent(self, payment_id: UUID) -> str:
        return str(self.store.load(Payment, payment_id).intent_id)

    def started(self, student: Actor) -> UUID:
        """Given: the student started paying for their track."""
        return self.payments.create_intent(student).id

    def paid(self, student: Actor) -> UUID:
        """Given: the provider reported the student's payment succeeded."""
        payment_id = self.started(student)
        self.payments.record_provider_event("evt_paid", SUCCEEDED, {
            "id": self.intent(payment_id), "amount_received": self.amount(payment_id),
            "currency": "eur"})
        return payment_id

    def amount(self, payment_id: UUID) -> int:
        return int(self.store.load(Payment, payment_id).amount)

    def approved(self, student: Actor, admin: Actor) -> UUID:
        """Given: the student asked for a refund of a paid payment and an admin agreed."""
        payment_id = self.paid(student)
        self.payments.request_refund(student, payment_id, "changed my mind")
        self.payments.decide_refund(admin, payment_id, True, "within 14 days")
        return payment_id

    def names(self, aggregate_id: UUID) -> list[str]:
        return event_names(self.store, aggregate_id)

    def last(self, aggregate_id: UUID) -> Any:
        return list(self.store.events.get(aggregate_id))[-1]

    def head(self) -> int:
        return self.store.recorder.max_notification_id() or 0


ADMIN = Actor(uuid4(), Role.ADMIN)


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        gateway = Gateway()
        yield World(store, gateway, PaymentCommands(store, gateway, PRICES, "EUR"))


def refused(error: pytest.ExceptionInfo[DomainError], kind: type[DomainError],
            code: str) -> None:
    assert type(error.value) is kind
    assert error.value.code == code


def outcome(call: Callable[[], int]) -> int | str:
    """The log position a command returned, or the code of the domain error it raised."""
    try:
        return call()
    except DomainError as error:
        return error.code


# -- starting a payment ----------------------------------------------------------------------

def test_a_student_starts_a_payment_at_their_tracks_price_in_the_servers_currency(
        world: World) -> None:
    student = world.student(Track.FULL_STACK)
    started = world.payments.create_intent(student)
    [(amount, currency, metadata, key)] = world.gateway.intents
    assert (amount, currency, metadata) == (
        59900, "eur", {"account_id": str(student.id), "track": "FSD"})
    assert key.startswith("intent-")
    assert world.names(started.id) == ["Initiated"]
    initiated = world.last(started.id)
    assert (initiated.student_id, initiated.track, initiated.amount, initiated.currency,
            initiated.actor_id) == (student.id, "FSD", 59900, "eur", student.id)
    assert started.id == Payment.id_for(initiated.intent_id)
    assert (started.client_secret, started.amount, started.currency, started.position) == (
        "secret_1", 59900, "eur", world.head())


def test_each_new_payment_is_a_distinct_intent_at_the_provider(world: World) -> None:
    student = world.student()
    first, second = world.started(student), world.started(student)
    assert first != second
    keys = [key for *_, key in world.gateway.intents]
    assert len(set(keys)) == 2


@pytest.mark.parametrize("role", [Role.TRAINER, Role.ADMIN, Role.AUDITOR])
def test_only_a_student_pays_for_enrolment(world: World, role: Role) -> None:
    enrolled = world.student()  # even an account that has an enrolment, if not a student
    with pytest.raises(Forbidden) as error:
        world.payments.create_intent(Actor(enrolled.id, role))
    refused(error, Forbidden, "NOT_A_STUDENT")
    assert world.gateway.intents == []


def test_a_student_without_an_enrolment_cannot_pay(world: World) -> None:
    with pytest.raises(Forbidden) as error:
        world.payments.create_intent(Actor(uuid4(), Role.STUDENT))
    refused(error, Forbidden, "NOT_A_STUDENT")
    assert world.gateway.intents == []


def test_a_student_whose_track_is_paid_for_cannot_pay_again(world: World) -> None:
    student = world.student()
    world.payments.grant_access(world.paid(student))
    asked = len(world.gateway.intents)
    with pytest.raises(Conflict) as error:
        world.payments.create_intent(student)
    refused(error, Conflict, "ALREADY_PAID")
    assert len(world.gateway.intents) == asked


def test_a_payment_on_a_server_without_a_provider_is_refused(world: World) -> None:
    student = world.student()
    unconfigured = PaymentCommands(world.store, None, PRICES, "eur")
    with pytest.raises(PaymentsNotConfigured) as error:
        unconfigured.create_intent(student)
    refused(error, PaymentsNotConfigured, "PAYMENTS_NOT_CONFIGURED")
    assert isinstance(error.value, Conflict)
    assert world.head() == 1  # only the enrolment


# -- the provider's webhooks -------------------------------------------------------------------

def test_a_success_for_the_full_amount_marks_the_payment_succeeded(world: World) -> None:
    payment_id = world.started(world.student())
    position = world.payments.record_provider_event("evt_1", SUCCEEDED, {
        "id": world.intent(payment_id), "amount_received": 49900, "currency": "EUR"})
    assert world.names(payment_id) == ["Initiated", "Succeeded"]
    succeeded = world.last(payment_id)
    assert (succeeded.provider_event_id, succeeded.amount_received, succeeded.currency) == (
        "evt_1", 49900, "eur")
    assert position == world.head()
    assert world.store.load(Payment, payment_id).status == "succeeded"


@pytest.mark.parametrize(("amount", "currency"), [(100, "eur"), (49900, "usd"), (0, "")])
def test_a_success_for_another_amount_or_currency_is_recorded_as_a_mismatch(
        world: World, amount: int, currency: str) -> None:
    payment_id = world.started(world.student())
    world.payments.record_provider_event("evt_1", SUCCEEDED, {
        "id": world.intent(payment_id), "amount_received": amount, "currency": currency})
    assert world.names(payment_id) == ["Initiated", "AmountMismatched"]
    mismatch = world.last(payment_id)
    assert (mismatch.expected, mismatch.received, mismatch.currency) == (
        49900, amount, currency)
    assert world.store.load(Payment, payment_id).status == "amount_mismatch"


def test_a_success_missing_its_amount_is_a_mismatch_not_a_payment(world: World) -> None:
    payment_id = world.started(world.student())
    world.payments.record_provider_event("evt_1", SUCCEEDED, {"id": world.intent(payment_id)})
    assert world.names(payment_id) == ["Initiated", "AmountMismatched"]
    assert (world.last(payment_id).received, world.last(payment_id).currency) == (0, "")


def test_a_redelivered_success_changes_nothing(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    before = world.head()
    again = world.payments.record_provider_event("evt_paid", SUCCEEDED, {
        "id": world.intent(payment_id), "amount_received": 49900, "currency": "eur"})
    another = world.payments.record_provider_event("evt_other", SUCCEEDED, {
        "id": world.intent(payment_id), "amount_received": 49900, "currency": "eur"})
    assert (again, another) == (0, 0)
    assert world.names(payment_id) == ["Initiated", "Succeeded"]
    assert world.head() == before


def test_a_failure_records_the_providers_message(world: World) -> None:
    payment_id = world.started(world.student())
    position = world.payments.record_provider_event("evt_f", FAILED, {
        "id": world.intent(payment_id),
        "last_payment_error": {"message": "Your card was declined."}})
    assert world.names(payment_id) == ["Initiated", "Failed"]
    failed = world.last(payment_id)
    assert (failed.provider_event_id, failed.reason) == ("evt_f", "Your card was declined.")
    assert position == world.head()


@pytest.mark.parametrize("obj", [{}, {"last_payment_error": None},
                                 {"last_payment_error": {}},
                                 {"last_payment_error": {"message": ""}}])
def test_a_failure_without_a_message_gets_a_generic_reason(
        world: World, obj: dict[str, Any]) -> None:
    payment_id = world.started(world.student())
    world.payments.record_provider_event("evt_f", FAILED,
                                         {"id": world.intent(payment_id), **obj})
    assert world.last(payment_id).reason == "payment failed"


def test_an_overlong_failure_message_is_cut_to_500_characters(world: World) -> None:
    payment_id = world.started(world.student())
    world.payments.record_provider_event("evt_f", FAILED, {
        "id": world.intent(payment_id), "last_payment_error": {"message": "x" * 10_000}})
    assert world.last(payment_id).reason == "x" * 500


def test_a_failure_arriving_after_the_success_changes_nothing(world: World) -> None:
    payment_id = world.paid(world.student())
    position = world.payments.record_provider_event("evt_late", FAILED, {
        "id": world.intent(payment_id), "last_payment_error": {"message": "declined"}})
    assert position == 0
    assert world.names(payment_id) == ["Initiated", "Succeeded"]


def test_a_refund_at_the_provider_is_recorded_with_its_amount(world: World) -> None:
    payment_id = world.paid(world.student())
    position = world.payments.record_provider_event("evt_r", REFUNDED, {
        "id": "ch_1", "payment_intent": world.intent(payment_id), "amount_refunded": 49900})
    assert world.names(payment_id) == ["Initiated", "Succeeded", "Refunded"]
    assert (world.last(payment_id).provider_event_id,
            world.last(payment_id).amount_refunded) == ("evt_r", 49900)
    assert position == world.head()


def test_a_success_arriving_after_the_refund_changes_nothing(world: World) -> None:
    payment_id = world.started(world.student())
    intent = world.intent(payment_id)
    world.payments.record_provider_event("evt_r", REFUNDED, {"payment_intent": intent})
    position = world.payments.record_provider_event("evt_s", SUCCEEDED, {
        "id": intent, "amount_received": 49900, "currency": "eur"})
    assert position == 0
    assert world.names(payment_id) == ["Initiated", "Refunded"]
    assert world.store.load(Payment, payment_id).status == "refunded"


def test_a_redelivered_refund_changes_nothing(world: World) -> None:
    payment_id = world.paid(world.student())
    refund = {"payment_intent": world.intent(payment_id), "amount_refunded": 49900}
    world.payments.record_provider_event("evt_r", REFUNDED, refund)
    assert world.payments.record_provider_event("evt_r", REFUNDED, refund) == 0
    assert world.names(payment_id) == ["Initiated", "Succeeded", "Refunded"]


@pytest.mark.parametrize(("event_type", "obj"), [
    (SUCCEEDED, {"id": "pi_unknown", "amount_received": 49900, "currency": "eur"}),
    (FAILED, {"id": "pi_unknown"}),
    (REFUNDED, {"payment_intent": "pi_unknown"}),
    (REFUNDED, {"payment_intent": None}),
    (SUCCEEDED, {}),
    (SUCCEEDED, {"id": "pi_\x00"}),
    (SUCCEEDED, {"id": ["pi", 1]}),
    (REFUNDED, {"payment_intent": {"id": "pi"}}),
])
def test_a_webhook_for_an_intent_of_no_payment_changes_nothing(
        world: World, event_type: str, obj: dict[str, Any]) -> None:
    world.started(world.student())
    before = world.head()
    assert world.payments.record_provider_event("evt_x", event_type, obj) == 0
    assert world.head() == before


@pytest.mark.parametrize("event_type", [
    "payment_intent.created", "charge.succeeded", "customer.created", "", "\x00"])
def test_a_webhook_of_a_type_not_followed_changes_nothing(
        world: World, event_type: str) -> None:
    payment_id = world.started(world.student())
    before = world.head()
    position = world.payments.record_provider_event("evt_x", event_type, {
        "id": world.intent(payment_id), "amount_received": 49900, "currency": "eur"})
    assert position == 0
    assert world.head() == before
    assert world.names(payment_id) == ["Initiated"]


@pytest.mark.parametrize(("event_id", "event_type"), [("evt_\x00", SUCCEEDED),
                                                     ("evt_\udfff", REFUNDED)])
def test_a_provider_event_id_no_reader_could_store_is_refused_and_nothing_recorded(
        world: World, event_id: str, event_type: str) -> None:
    payment_id = world.paid(world.student()) if event_type == REFUNDED else world.started(
        world.student())
    names = world.names(payment_id)
    intent = world.intent(payment_id)
    obj = {"id": intent, "payment_intent": intent, "amount_received": 49900,
           "amount_refunded": 49900, "currency": "eur"}
    with pytest.raises(Invalid) as error:
        world.payments.record_provider_event(event_id, event_type, obj)
    refused(error, Invalid, "UNSTORABLE_TEXT")
    assert world.names(payment_id) == names


@pytest.mark.parametrize(("event_type", "field", "text", "recorded"), [
    (FAILED, "last_payment_error", {"message": "card\x00declined"}, "card\ufffddeclined"),
    (FAILED, "last_payment_error", {"message": "card \ud800 declined"}, "card \ufffd declined"),
    (SUCCEEDED, "currency", "eur\x00", "eur\ufffd"),
])
def test_provider_text_the_log_cannot_hold_is_recorded_with_a_replacement(
        world: World, event_type: str, field: str, text: Any, recorded: str) -> None:
    payment_id = world.started(world.student())
    intent = world.intent(payment_id)
    world.payments.record_provider_event("evt_t", event_type, {
        "id": intent, "amount_received": 49900, "currency": "eur", field: text})
    last = world.last(payment_id)
    assert recorded in (getattr(last, "reason", ""), getattr(last, "currency", ""))


@pytest.mark.parametrize(("event_type", "obj"), [
    (SUCCEEDED, {"id": "pi_\ud800", "amount_received": 49900, "currency": "eur"}),
    (REFUNDED, {"payment_intent": "pi_\udc00"}),
])
def test_a_webhook_naming_an_intent_with_a_lone_surrogate_is_not_a_server_error(
        world: World, event_type: str, obj: dict[str, Any]) -> None:
    world.started(world.student())
    before = world.head()
    assert outcome(lambda: world.payments.record_provider_event(
        "evt_x", event_type, obj)) in (0, "UNSTORABLE_TEXT")
    assert world.head() == before


@pytest.mark.parametrize(("event_type", "field", "value"), [
    (SUCCEEDED, "amount_received", "lots"),
    (SUCCEEDED, "amount_received", None),
    (SUCCEEDED, "amount_received", {"value": 49900}),
    (REFUNDED, "amount_refunded", "all of it"),
    (REFUNDED, "amount_refunded", None),
])
def test_a_webhook_with_a_field_of_the_wrong_type_is_not_a_server_error(
        world: World, event_type: str, field: str, value: Any) -> None:
    payment_id = world.paid(world.student()) if event_type == REFUNDED else world.started(
        world.student())
    names = world.names(payment_id)
    intent = world.intent(payment_id)
    obj = {"id": intent, "payment_intent": intent, "currency": "eur", field: value}
    result = outcome(lambda: world.payments.record_provider_event("evt_x", event_type, obj))
    assert result == 0 or isinstance(result, str)  # a domain error's code: a 4xx, not a 500
    assert world.names(payment_id) == names


@pytest.mark.parametrize("error", ["card declined", ["card declined"], {"message": 7}, None])
def test_a_failure_without_a_usable_message_is_recorded_as_payment_failed(
        world: World, error: Any) -> None:
    payment_id = world.started(world.student())
    intent = world.intent(payment_id)
    world.payments.record_provider_event("evt_f", FAILED, {"id": intent,
                                                           "last_payment_error": error})
    assert (world.names(payment_id)[-1], world.last(payment_id).reason) == (
        "Failed", "payment failed")


@pytest.mark.parametrize(("event_type", "field"), [(SUCCEEDED, "amount_received"),
                                                   (REFUNDED, "amount_refunded")])
def test_an_amount_past_what_the_read_models_hold_changes_nothing(
        world: World, event_type: str, field: str) -> None:
    payment_id = world.paid(world.student()) if event_type == REFUNDED else world.started(
        world.student())
    names = world.names(payment_id)
    intent = world.intent(payment_id)
    assert world.payments.record_provider_event("evt_big", event_type, {
        "id": intent, "payment_intent": intent, "currency": "eur", field: 2**31}) == 0
    assert world.names(payment_id) == names


# -- refunds ---------------------------------------------------------------------------------

def test_the_payer_asks_for_a_refund_of_a_completed_payment(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    position = world.payments.request_refund(student, payment_id, "changed my mind")
    assert world.names(payment_id)[-1] == "RefundRequested"
    requested = world.last(payment_id)
    assert (requested.actor_id, requested.reason) == (student.id, "changed my mind")
    assert position == world.head()


def test_asking_again_for_a_refund_already_requested_changes_nothing(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.request_refund(student, payment_id, "changed my mind")
    assert world.payments.request_refund(student, payment_id, "please") == 0
    assert world.names(payment_id) == ["Initiated", "Succeeded", "RefundRequested"]


@pytest.mark.parametrize("outcome_event", [None, FAILED, REFUNDED])
def test_a_refund_of_a_payment_never_completed_is_refused(
        world: World, outcome_event: str | None) -> None:
    student = world.student()
    payment_id = world.started(student)
    if outcome_event is not None:
        intent = world.intent(payment_id)
        world.payments.record_provider_event("evt_1", outcome_event,
                                             {"id": intent, "payment_intent": intent})
    names = world.names(payment_id)
    with pytest.raises(Conflict) as error:
        world.payments.request_refund(student, payment_id, "changed my mind")
    refused(error, Conflict, "INVALID_TRANSITION")
    assert error.value.details["status"] == world.store.load(Payment, payment_id).status
    assert world.names(payment_id) == names


def test_another_students_payment_is_not_found_for_a_refund(world: World) -> None:
    payment_id = world.paid(world.student())
    with pytest.raises(NotFound) as error:
        world.payments.request_refund(world.student(), payment_id, "mine now")
    refused(error, NotFound, "NOT_FOUND")
    assert world.names(payment_id) == ["Initiated", "Succeeded"]


@pytest.mark.parametrize("aggregate", ["nothing", "student"])
def test_a_refund_of_no_payment_is_not_found(world: World, aggregate: str) -> None:
    student = world.student()
    target = Student.id_for(student.id) if aggregate == "student" else uuid4()
    with pytest.raises(NotFound) as error:
        world.payments.request_refund(student, target, "why not")
    refused(error, NotFound, "NOT_FOUND")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SUPERADMIN])
def test_only_the_payer_asks_for_a_refund_not_an_administrator(
        world: World, role: Role) -> None:
    payment_id = world.paid(world.student())
    with pytest.raises(Forbidden) as error:
        world.payments.request_refund(Actor(uuid4(), role), payment_id, "on their behalf")
    refused(error, Forbidden, "NOT_YOUR_PAYMENT")
    assert world.names(payment_id) == ["Initiated", "Succeeded"]


@pytest.mark.parametrize("reason", ["no\x00thanks", "no \ud800 thanks"])
def test_a_refund_reason_no_reader_could_store_is_refused(world: World, reason: str) -> None:
    student = world.student()
    payment_id = world.paid(student)
    with pytest.raises(Invalid) as error:
        world.payments.request_refund(student, payment_id, reason)
    refused(error, Invalid, "UNSTORABLE_TEXT")
    assert world.names(payment_id) == ["Initiated", "Succeeded"]


def test_an_admin_approves_a_requested_refund(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.request_refund(student, payment_id, "changed my mind")
    position = world.payments.decide_refund(ADMIN, payment_id, True, "within 14 days")
    assert world.names(payment_id)[-1] == "RefundApproved"
    approved = world.last(payment_id)
    assert (approved.actor_id, approved.reason) == (ADMIN.id, "within 14 days")
    assert position == world.head()
    assert world.gateway.refunds == []  # the provider is asked by the process manager


@pytest.mark.parametrize("role", [Role.STUDENT, Role.TRAINER, Role.AUDITOR, Role.ANALYST])
def test_only_administrators_decide_a_refund(world: World, role: Role) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.request_refund(student, payment_id, "changed my mind")
    actor = student if role is Role.STUDENT else Actor(uuid4(), role)
    with pytest.raises(Forbidden) as error:
        world.payments.decide_refund(actor, payment_id, True, "")
    refused(error, Forbidden, "PERMISSION_DENIED")
    assert world.names(payment_id)[-1] == "RefundRequested"


def test_a_refund_nobody_asked_for_cannot_be_decided(world: World) -> None:
    payment_id = world.paid(world.student())
    with pytest.raises(Conflict) as error:
        world.payments.decide_refund(ADMIN, payment_id, True, "")
    refused(error, Conflict, "NO_REFUND_REQUEST")
    assert world.names(payment_id) == ["Initiated", "Succeeded"]


def test_a_refund_decided_once_cannot_be_decided_again(world: World) -> None:
    payment_id = world.approved(world.student(), ADMIN)
    with pytest.raises(Conflict) as error:
        world.payments.decide_refund(ADMIN, payment_id, False, "changed our mind")
    refused(error, Conflict, "NO_REFUND_REQUEST")
    assert world.names(payment_id)[-1] == "RefundApproved"


def test_deciding_the_refund_of_no_payment_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as error:
        world.payments.decide_refund(ADMIN, uuid4(), True, "")
    refused(error, NotFound, "NOT_FOUND")


# -- the process managers' follow-ups ------------------------------------------------------

def test_a_succeeded_payment_grants_the_student_access(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    position = world.payments.grant_access(payment_id)
    student_id = Student.id_for(student.id)
    assert world.names(student_id) == ["Enrolled", "AccessGranted"]
    assert world.last(student_id).payment_id == payment_id
    assert world.store.load(Student, student_id).paid_by == payment_id
    assert position == world.head()


def test_granting_access_again_changes_nothing(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.grant_access(payment_id)
    assert world.payments.grant_access(payment_id) == 0
    assert world.names(Student.id_for(student.id)) == ["Enrolled", "AccessGranted"]


@pytest.mark.parametrize("outcome_event", [None, FAILED])
def test_a_payment_not_succeeded_grants_nothing(
        world: World, outcome_event: str | None) -> None:
    student = world.student()
    payment_id = world.started(student)
    if outcome_event is not None:
        world.payments.record_provider_event("evt_1", outcome_event,
                                             {"id": world.intent(payment_id)})
    assert world.payments.grant_access(payment_id) == 0
    assert world.names(Student.id_for(student.id)) == ["Enrolled"]


def test_a_payment_for_a_track_the_student_has_left_grants_nothing(world: World) -> None:
    student = world.student(Track.DATA_PROFESSIONAL)
    payment_id = world.paid(student)
    enrolment = world.store.load(Student, Student.id_for(student.id))
    enrolment.change_track(Track.FULL_STACK, actor_id=ADMIN.id, reason="moved")
    world.store.commit(enrolment)
    assert world.payments.grant_access(payment_id) == 0
    assert world.names(Student.id_for(student.id)) == ["Enrolled", "TrackChanged"]


@pytest.mark.parametrize("command", ["grant_access", "revoke_access", "submit_refund"])
def test_a_follow_up_for_no_payment_is_not_found(world: World, command: str) -> None:
    student = world.student()
    with pytest.raises(NotFound) as error:
        getattr(world.payments, command)(Student.id_for(student.id))
    refused(error, NotFound, "NOT_FOUND")
    assert str(error.value) == "Payment not found"


def test_a_refunded_payment_revokes_the_access_it_granted(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.grant_access(payment_id)
    position = world.payments.revoke_access(payment_id)
    student_id = Student.id_for(student.id)
    assert world.names(student_id) == ["Enrolled", "AccessGranted", "AccessRevoked"]
    revoked = world.last(student_id)
    assert (revoked.payment_id, revoked.reason) == (payment_id, "payment refunded")
    assert world.store.load(Student, student_id).paid_by is None
    assert position == world.head()


def test_revoking_access_again_changes_nothing(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.grant_access(payment_id)
    world.payments.revoke_access(payment_id)
    assert world.payments.revoke_access(payment_id) == 0
    assert world.names(Student.id_for(student.id)) == [
        "Enrolled", "AccessGranted", "AccessRevoked"]


def test_a_revocation_that_overtook_the_grant_leaves_no_access(world: World) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.revoke_access(payment_id)
    assert world.payments.grant_access(payment_id) == 0
    student_id = Student.id_for(student.id)
    assert world.names(student_id) == ["Enrolled", "AccessRevoked"]
    assert world.store.load(Student, student_id).paid_by is None


def test_an_approved_refund_is_submitted_to_the_provider_once(world: World) -> None:
    payment_id = world.approved(world.student(), ADMIN)
    position = world.payments.submit_refund(payment_id)
    assert world.gateway.refunds == [(world.intent(payment_id), f"refund-{payment_id}")]
    assert world.names(payment_id)[-1] == "RefundSubmitted"
    assert world.last(payment_id).refund_id == "re_1"
    assert position == world.head()
    assert world.payments.submit_refund(payment_id) == 0  # redelivered: not asked again
    assert len(world.gateway.refunds) == 1


@pytest.mark.parametrize("decision", [None, False])
def test_a_refund_not_approved_is_not_submitted(world: World, decision: bool | None) -> None:
    student = world.student()
    payment_id = world.paid(student)
    world.payments.request_refund(student, payment_id, "changed my mind")
    if decision is not None:
        world.payments.decide_refund(ADMIN, payment_id, decision, "course taken")
    names = world.names(payment_id)
    assert world.payments.submit_refund(payment_id) == 0
    assert world.gateway.refunds == []
    assert world.names(payment_id) == names


def test_an_approved_refund_on_a_server_without_a_provider_is_refused(world: World) -> None:
    payment_id = world.approved(world.student(), ADMIN)
    unconfigured = PaymentCommands(world.store, None, PRICES, "eur")
    with pytest.raises(PaymentsNotConfigured) as error:
        unconfigured.submit_refund(payment_id)
    refused(error, PaymentsNotConfigured, "PAYMENTS_NOT_CONFIGURED")
    assert world.names(payment_id)[-1] == "RefundApproved"
