"""Payment commands: intents for the track's price, webhook outcomes, refunds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from application.accounts import Actor, require_staff
from application.authorization import ADMINISTRATORS
from application.eventstore import EventStore, retry_on_conflict
from application.ports import PaymentGateway
from domain.errors import Conflict, Forbidden, NotFound
from domain.payments import Payment
from domain.roles import Role
from domain.students import Student
from domain.text import storable


@dataclass(frozen=True)
class StartedPayment:
    id: UUID
    client_secret: str
    amount: int
    currency: str
    position: int


class PaymentsNotConfigured(Conflict):
    code = "PAYMENTS_NOT_CONFIGURED"


# Amounts in the currency's smallest unit, as the read models store them (32-bit).
MAX_AMOUNT = 2**31 - 1


def _amount(value: Any) -> int | None:
    """A provider's amount, or None if it is not a whole number the system can hold."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        return None
    return value


class PaymentCommands:
    def __init__(self, store: EventStore, gateway: PaymentGateway | None,
                 prices: dict[str, int], currency: str) -> None:
        self.store = store
        self.gateway = gateway
        self.prices = prices
        self.currency = currency.lower()

    def _gateway(self) -> PaymentGateway:
        if self.gateway is None:
            raise PaymentsNotConfigured("Payments are not configured on this server")
        return self.gateway

    def create_intent(self, actor: Actor) -> StartedPayment:
        """A payment for the student's own track, at the server's price."""
        student = self.store.find(Student, Student.id_for(actor.id))
        if student is None or actor.role is not Role.STUDENT:
            raise Forbidden("Only students pay for enrolment", code="NOT_A_STUDENT")
        if student.paid_by is not None:
            raise Conflict("Your track is already paid for", code="ALREADY_PAID")
        amount = self.prices[student.track.value]
        intent = self._gateway().create_intent(
            amount, self.currency,
            {"account_id": str(actor.id), "track": student.track.value},
            idempotency_key=f"intent-{uuid4()}")
        payment = Payment(student_id=actor.id, track=student.track.value, amount=amount,
                          currency=self.currency, intent_id=intent.intent_id, actor_id=actor.id)
        return StartedPayment(payment.id, intent.client_secret, amount, self.currency,
                              self.store.commit(payment))

    def record_provider_event(self, event_id: str, event_type: str,
                              obj: dict[str, Any]) -> int:
        """Apply a verified webhook event; unknown intents and types, and payloads not
        of the provider's shape, change nothing."""
        if event_type in ("payment_intent.succeeded", "payment_intent.payment_failed"):
            intent_id = obj.get("id")
        elif event_type == "charge.refunded":
            intent_id = obj.get("payment_intent")
        else:
            return 0
        if not isinstance(intent_id, str) or not 0 < len(intent_id) <= 255 \
                or storable(intent_id) != intent_id:
            return 0  # names no payment of ours
        if event_type == "payment_intent.succeeded":
            amount = _amount(obj.get("amount_received", 0))
        elif event_type == "charge.refunded":
            amount = _amount(obj.get("amount_refunded", 0))
        else:
            amount = 0
        if amount is None:
            return 0
        error = obj.get("last_payment_error")
        message = error.get("message") if isinstance(error, dict) else None
        # The provider's words are outside text: what the log cannot hold is replaced, so
        # the outcome is recorded instead of refused on every redelivery.
        reason = storable(message) if isinstance(message, str) and message else \
            "payment failed"
        currency = obj.get("currency")
        currency = storable(currency) if isinstance(currency, str) else ""

        def command() -> int:
            payment = self.store.find(Payment, Payment.id_for(intent_id))
            if payment is None:
                return 0
            if event_type == "payment_intent.succeeded":
                payment.succeeded(event_id, amount, currency)
            elif event_type == "payment_intent.payment_failed":
                payment.failed(event_id, reason)
            else:
                payment.refunded(event_id, amount)
            return self.store.commit(payment)

        return retry_on_conflict(command)

    def _payment(self, actor: Actor, payment_id: UUID) -> Payment:
        payment = self.store.find(Payment, payment_id)
        if payment is None or (payment.student_id != actor.id
                               and actor.role not in ADMINISTRATORS):
            raise NotFound("Payment not found")
        return payment

    def request_refund(self, actor: Actor, payment_id: UUID, reason: str) -> int:
        def command() -> int:
            payment = self._payment(actor, payment_id)
            if payment.student_id != actor.id:
                raise Forbidden("Only the payer asks for a refund", code="NOT_YOUR_PAYMENT")
            payment.request_refund(actor_id=actor.id, reason=reason)
            return self.store.commit(payment)

        return retry_on_conflict(command)

    def decide_refund(self, actor: Actor, payment_id: UUID, approve: bool, reason: str) -> int:
        require_staff(actor)

        def command() -> int:
            payment = self._payment(actor, payment_id)
            payment.decide_refund(approve, actor_id=actor.id, reason=reason)
            return self.store.commit(payment)

        return retry_on_conflict(command)

    # -- called by process managers ------------------------------------------------------

    def grant_access(self, payment_id: UUID) -> int:
        def command() -> int:
            payment = self.store.load(Payment, payment_id, "Payment")
            student = self.store.load(Student, Student.id_for(payment.student_id), "Student")
            if payment.status != "succeeded" or payment.track != student.track.value:
                return 0
            student.grant_access(payment.id)
            return self.store.commit(student)

        return retry_on_conflict(command)

    def revoke_access(self, payment_id: UUID) -> int:
        def command() -> int:
            payment = self.store.load(Payment, payment_id, "Payment")
            student = self.store.load(Student, Student.id_for(payment.student_id), "Student")
            student.revoke_access(payment.id, reason="payment refunded")
            return self.store.commit(student)

        return retry_on_conflict(command)

    def submit_refund(self, payment_id: UUID) -> int:
        payment = self.store.load(Payment, payment_id, "Payment")
        if payment.refund != "approved":
            return 0
        # The key makes a retried call the same refund at the provider.
        refund_id = self._gateway().refund(payment.intent_id, f"refund-{payment.id}")

        def command() -> int:
            fresh = self.store.load(Payment, payment_id, "Payment")
            fresh.refund_submitted(refund_id)
            return self.store.commit(fresh)

        return retry_on_conflict(command)
