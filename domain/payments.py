"""Payments for track enrolment, fed by the payment provider's webhooks.

Webhook deliveries may repeat and arrive in any order, so the outcome is a lattice:
refunded outranks paid (or a recorded amount mismatch), which outranks failed, which
outranks waiting; applying the same deliveries in any order ends in the same state.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict
from domain.ids import derived_id

REQUIRES_PAYMENT, FAILED, SUCCEEDED, MISMATCH, REFUNDED = (
    "requires_payment", "failed", "succeeded", "amount_mismatch", "refunded")
RANK = {REQUIRES_PAYMENT: 0, FAILED: 1, SUCCEEDED: 2, MISMATCH: 2, REFUNDED: 3}


class Payment(Aggregate):
    class Initiated(Aggregate.Created):
        student_id: UUID
        track: str
        amount: int
        currency: str
        intent_id: str
        actor_id: UUID

    class Succeeded(Aggregate.Event):
        provider_event_id: str
        amount_received: int
        currency: str

    class AmountMismatched(Aggregate.Event):
        provider_event_id: str
        expected: int
        received: int
        currency: str

    class Failed(Aggregate.Event):
        provider_event_id: str
        reason: str

    class Refunded(Aggregate.Event):
        provider_event_id: str
        amount_refunded: int

    class RefundRequested(Aggregate.Event):
        actor_id: UUID
        reason: str

    class RefundApproved(Aggregate.Event):
        actor_id: UUID
        reason: str

    class RefundRejected(Aggregate.Event):
        actor_id: UUID
        reason: str

    class RefundSubmitted(Aggregate.Event):
        refund_id: str

    @staticmethod
    def id_for(intent_id: str) -> UUID:
        return derived_id("payment", intent_id)

    @classmethod
    def create_id(cls, intent_id: str) -> UUID:
        return cls.id_for(intent_id)

    @event(Initiated)
    def __init__(self, student_id: UUID, track: str, amount: int, currency: str,
                 intent_id: str, actor_id: UUID) -> None:
        self.student_id = student_id
        self.track = track
        self.amount = amount
        self.currency = currency
        self.intent_id = intent_id
        self.status = REQUIRES_PAYMENT
        self.seen: set[str] = set()
        self.refund = "none"

    def _outranked_by(self, status: str) -> bool:
        return RANK[status] > RANK[self.status]

    def succeeded(self, provider_event_id: str, amount_received: int, currency: str) -> None:
        if provider_event_id in self.seen or not self._outranked_by(SUCCEEDED):
            return
        if amount_received != self.amount or currency.lower() != self.currency:
            self._mismatched(provider_event_id=provider_event_id, expected=self.amount,
                             received=amount_received, currency=currency.lower())
            return
        self._succeeded(provider_event_id=provider_event_id, amount_received=amount_received,
                        currency=currency.lower())

    @event(Succeeded)
    def _succeeded(self, provider_event_id: str, amount_received: int, currency: str) -> None:
        self.seen.add(provider_event_id)
        self.status = SUCCEEDED

    @event(AmountMismatched)
    def _mismatched(self, provider_event_id: str, expected: int, received: int,
                    currency: str) -> None:
        self.seen.add(provider_event_id)
        self.status = MISMATCH

    def failed(self, provider_event_id: str, reason: str) -> None:
        if provider_event_id in self.seen or not self._outranked_by(FAILED):
            return
        self._failed(provider_event_id=provider_event_id, reason=reason[:500])

    @event(Failed)
    def _failed(self, provider_event_id: str, reason: str) -> None:
        self.seen.add(provider_event_id)
        self.status = FAILED

    def refunded(self, provider_event_id: str, amount_refunded: int) -> None:
        if provider_event_id in self.seen or not self._outranked_by(REFUNDED):
            return
        self._refunded(provider_event_id=provider_event_id, amount_refunded=amount_refunded)

    @event(Refunded)
    def _refunded(self, provider_event_id: str, amount_refunded: int) -> None:
        self.seen.add(provider_event_id)
        self.status = REFUNDED

    def request_refund(self, actor_id: UUID, reason: str) -> None:
        if self.status != SUCCEEDED:
            raise Conflict("Only a completed payment can be refunded",
                           code="INVALID_TRANSITION", status=self.status)
        if self.refund in ("requested", "approved"):
            return
        self._refund_requested(actor_id=actor_id, reason=reason)

    @event(RefundRequested)
    def _refund_requested(self, actor_id: UUID, reason: str) -> None:
        self.refund = "requested"

    def decide_refund(self, approve: bool, actor_id: UUID, reason: str) -> None:
        if self.refund != "requested":
            raise Conflict("There is no refund request to decide", code="NO_REFUND_REQUEST")
        if approve:
            self._refund_approved(actor_id=actor_id, reason=reason)
        else:
            self._refund_rejected(actor_id=actor_id, reason=reason)

    @event(RefundApproved)
    def _refund_approved(self, actor_id: UUID, reason: str) -> None:
        self.refund = "approved"

    @event(RefundRejected)
    def _refund_rejected(self, actor_id: UUID, reason: str) -> None:
        self.refund = "rejected"

    def refund_submitted(self, refund_id: str) -> None:
        if self.refund == "approved":
            self._refund_submitted(refund_id=refund_id)

    @event(RefundSubmitted)
    def _refund_submitted(self, refund_id: str) -> None:
        self.refund = "submitted"
