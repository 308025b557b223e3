"""/api/payments/: enrolment payments, the Stripe webhook, refunds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, StringConstraints

from application.authorization import may_see_payment, oversees
from domain.errors import NotFound
from infrastructure.stripe_gateway import WebhookRejected, verify_stripe_event
from interfaces.http.consistency import Settling, answer_after
from interfaces.http.dependencies import (
    PaymentCommandsDep,
    PaymentViewsDep,
    Principal,
    PrincipalDep,
    StripeWebhookSecretDep,
    StripeWebhookToleranceDep,
    WebhookInboxDep,
    read_position,
)
from interfaces.http.errors import error_response
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router
from interfaces.http.schemas import Body, ReceivedOut
from projections.payments import PaymentsView

router = Router(prefix="/api/payments", tags=["payments"])

Position = Annotated[int | None, Depends(read_position)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class CreateIntentIn(Body):
    """Nothing to choose: the server sets amount and currency from the student's track."""


class IntentOut(BaseModel):
    id: UUID
    client_secret: str
    amount: int
    currency: str
    status: str


class PaymentOut(BaseModel):
    id: UUID
    student_id: UUID
    track: str
    amount: int
    currency: str
    status: str
    refund: str
    failure_reason: str | None
    amount_received: int | None
    created_at: datetime
    paid_at: datetime | None
    refunded_at: datetime | None
    updated_at: datetime


class RefundRequestIn(Body):
    reason: Reason = ""


class RefundDecisionIn(Body):
    approve: bool
    reason: Reason = ""


def _visible(payment_views: PaymentsView, p: Principal, payment_id: UUID) -> PaymentOut:
    row = payment_views.get(payment_id)
    if row is None or not may_see_payment(p.actor, row["student_id"]):
        raise NotFound("Payment not found")
    return PaymentOut(**row)


def _after(payment_views: PaymentsView, p: Principal, payment_id: UUID, position: int
           ) -> Settling:
    return answer_after(payment_views, position, lambda: _visible(payment_views, p, payment_id))


@router.post("/create-intent/", status_code=status.HTTP_201_CREATED, response_model=IntentOut)
def create_intent(p: PrincipalDep, payments: PaymentCommandsDep, response: Response,
                  body: CreateIntentIn | None = None) -> IntentOut:
    started = payments.create_intent(p.actor)
    response.headers["X-Position"] = str(started.position)
    return IntentOut(id=started.id, client_secret=started.client_secret,
                     amount=started.amount, currency=started.currency,
                     status="requires_payment")


@router.get("/", response_model=Page[PaymentOut])
def list_payments(request: Request, p: PrincipalDep, payment_views: PaymentViewsDep,
                  position: Position,
                  pages: Annotated[PageParams, Depends(page_params)]) -> dict[str, Any]:
    payment_views.catch_up(position)
    count, rows = payment_views.page(offset=pages.offset, limit=pages.page_size,
                                     student_id=None if oversees(p.role) else p.id)
    return paginate(request, pages, count, [PaymentOut(**r) for r in rows])


@router.post("/webhook/", response_model=ReceivedOut)
async def stripe_webhook(
    request: Request, payments: PaymentCommandsDep, webhooks: WebhookInboxDep,
    secret: StripeWebhookSecretDep, tolerance: StripeWebhookToleranceDep, response: Response,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> ReceivedOut | Response:
    """Stripe events: signature over the raw body, timestamp within tolerance, deduplicated
    by event id. Answers 2xx once the outcome is stored."""
    if secret is None:
        return error_response(409, "PAYMENTS_NOT_CONFIGURED", "No webhook secret configured")
    payload = await request.body()
    try:
        event = verify_stripe_event(payload, stripe_signature, secret.get_secret_value(), tolerance)
    except WebhookRejected as rejected:
        return error_response(400, rejected.code, rejected.message)
    event_id, kind = str(event["id"]), str(event["type"])
    position = await run_in_threadpool(
        webhooks.receive, "stripe", event_id, kind,
        lambda: payments.record_provider_event(event_id, kind, event["data"]["object"]))
    if position is None:
        return ReceivedOut(received=True, duplicate=True)
    # The position lets a reader of the payment see this outcome (0: nothing changed).
    response.headers["X-Position"] = str(position)
    return ReceivedOut(received=True)


# (routing.py types the id, so "webhook" is not taken for one: a GET there is a 405.)
@router.get("/{payment_id}/", response_model=PaymentOut)
def get_payment(payment_id: UUID, p: PrincipalDep, payment_views: PaymentViewsDep,
                position: Position) -> PaymentOut:
    payment_views.catch_up(position)
    return _visible(payment_views, p, payment_id)


@router.post("/{payment_id}/refund-request/", response_model=PaymentOut)
def request_refund(payment_id: UUID, body: RefundRequestIn, p: PrincipalDep,
                   payments: PaymentCommandsDep, payment_views: PaymentViewsDep) -> Settling:
    position = payments.request_refund(p.actor, payment_id, body.reason)
    return _after(payment_views, p, payment_id, position)


@router.post("/{payment_id}/refund/", response_model=PaymentOut)
def decide_refund(payment_id: UUID, body: RefundDecisionIn, p: PrincipalDep,
                  payments: PaymentCommandsDep, payment_views: PaymentViewsDep) -> Settling:
    position = payments.decide_refund(p.actor, payment_id, body.approve, body.reason)
    return _after(payment_views, p, payment_id, position)
