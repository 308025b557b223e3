"""The payments read model."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow

from domain.payments import Payment
from projections.base import Handler, ReadModel, ReadModelProjection, row_update

FOLLOWED = (Payment.Initiated, Payment.Succeeded, Payment.AmountMismatched, Payment.Failed,
            Payment.Refunded, Payment.RefundRequested, Payment.RefundApproved,
            Payment.RefundRejected, Payment.RefundSubmitted)
COLUMNS = ("id, student_id, track, amount, currency, status, refund, failure_reason, "
           "amount_received, created_at, paid_at, refunded_at, updated_at")


class PaymentsView(ReadModel):
    topics = tuple(get_topic(cls) for cls in FOLLOWED)
    tables = ("rm_payments",)
    ddl = """
CREATE TABLE IF NOT EXISTS rm_payments (
    id uuid PRIMARY KEY,
    student_id uuid NOT NULL,
    track text NOT NULL,
    amount integer NOT NULL,
    currency text NOT NULL,
    status text NOT NULL,
    refund text NOT NULL DEFAULT 'none',
    failure_reason text,
    amount_received integer,
    created_at timestamptz NOT NULL,
    paid_at timestamptz,
    refunded_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_payments_student ON rm_payments (student_id, created_at)
"""

    def get(self, payment_id: UUID) -> DictRow | None:
        return self.fetch_one(f"SELECT {COLUMNS} FROM rm_payments WHERE id = %s",
                              (payment_id,))

    def page(self, *, offset: int, limit: int, student_id: UUID | None
             ) -> tuple[int, list[DictRow]]:
        return self.page_of("rm_payments", COLUMNS,
                            "(%(student)s::uuid IS NULL OR student_id = %(student)s)",
                            {"student": student_id}, "created_at DESC, id", offset, limit)


_set = partial(row_update, "rm_payments")


class PaymentsProjection(ReadModelProjection):
    name = "payments"
    view_class = PaymentsView

    def handlers(self) -> dict[type, Handler]:
        return {
            Payment.Initiated: lambda e: [(
                "INSERT INTO rm_payments (id, student_id, track, amount, currency, status, "
                "created_at, updated_at) VALUES (%s, %s, %s, %s, %s, 'requires_payment', %s, %s) "
                "ON CONFLICT DO NOTHING",
                (e.originator_id, e.student_id, e.track, e.amount, e.currency, e.timestamp,
                 e.timestamp))],
            Payment.Succeeded: lambda e: [_set(
                e, "status = 'succeeded', amount_received = %s, paid_at = %s",
                e.amount_received, e.timestamp)],
            Payment.AmountMismatched: lambda e: [_set(
                e, "status = 'amount_mismatch', amount_received = %s", e.received)],
            Payment.Failed: lambda e: [_set(e, "status = 'failed', failure_reason = %s",
                                            e.reason)],
            Payment.Refunded: lambda e: [_set(e, "status = 'refunded', refunded_at = %s",
                                              e.timestamp)],
            Payment.RefundRequested: lambda e: [_set(e, "refund = 'requested'")],
            Payment.RefundApproved: lambda e: [_set(e, "refund = 'approved'")],
            Payment.RefundRejected: lambda e: [_set(e, "refund = 'rejected'")],
            Payment.RefundSubmitted: lambda e: [_set(e, "refund = 'submitted'")],
        }
