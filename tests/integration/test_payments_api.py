"""Paid enrolment with Stripe: intents, signed webhooks, order and repetition, refunds."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.payments import Payment
from domain.roles import Role
from tests.conftest import (
    Mailbox,
    Receiver,
    Server,
    User,
    make_settings,
    make_staff,
    new_database,
    register_student,
    running_server,
)
from tests.fake_stripe import WEBHOOK_SECRET, FakeStripe, fake_stripe, signed, stripe_event

P1 = "dp-01-sql-foundations"
WEBHOOK = "/api/payments/webhook/"


@pytest.fixture(scope="module")
def paid(smtp: tuple[Mailbox, int], slack: Receiver,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, FakeStripe]]:
    with new_database() as url, fake_stripe() as fake:
        settings = make_settings(url, smtp[1], tmp_path_factory.mktemp("pay"),
                                 stripe_secret_key="sk_test_" + "x" * 24,
                                 stripe_webhook_secret=WEBHOOK_SECRET,
                                 stripe_api_base=fake.url, slack_webhook_url=slack.url)
        with running_server(settings) as server:
            yield server, fake


@pytest.fixture
def c(paid: tuple[Server, FakeStripe]) -> Iterator[httpx.Client]:
    with paid[0].client() as client:
        yield client


def deliver(c: httpx.Client, event: dict[str, Any], **sign: Any) -> httpx.Response:
    body, header = signed(event, **sign)
    return c.post(WEBHOOK, content=body, headers={"Stripe-Signature": header,
                                                  "Content-Type": "application/json"})


def intent_of(paid: tuple[Server, FakeStripe], payment_id: str) -> str:
    from uuid import UUID

    payment = paid[0].container.store.load(Payment, UUID(payment_id), "Payment")
    return payment.intent_id


def start_payment(c: httpx.Client, student: User) -> dict[str, Any]:
    r = c.post("/api/payments/create-intent/", headers=student.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def succeeded(intent: str, amount: int = 49_900, **extra: Any) -> dict[str, Any]:
    return stripe_event("payment_intent.succeeded", {
        "id": intent, "object": "payment_intent", "amount_received": amount, "currency": "usd",
        **extra})


def can_start(c: httpx.Client, student: User) -> int:
    return c.post("/api/curriculum/progress/", headers=student.headers,
                  json={"project_id": P1, "action": "start"}).status_code


def wait_until(check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_the_server_sets_the_price_and_payment_opens_the_track(
    paid: tuple[Server, FakeStripe], c: httpx.Client, slack: Receiver,
) -> None:
    fake = paid[1]
    student = register_student(c, track="DP")
    assert can_start(c, student) == 402
    r = c.post("/api/payments/create-intent/", headers=student.headers,
               json={"amount": 1, "currency": "jpy"})
    assert r.status_code == 422
    payment = start_payment(c, student)
    assert (payment["amount"], payment["currency"]) == (49_900, "usd")
    assert payment["client_secret"].startswith("pi_")
    sent = fake.intents()[-1]
    assert sent["amount"] == "49900" and sent["currency"] == "usd"
    assert sent["metadata[account_id]"] == student.id
    assert fake.calls[-1][2] is not None  # an idempotency key was sent
    assert deliver(c, succeeded(intent_of(paid, payment["id"]))).status_code == 200
    wait_until(lambda: can_start(c, student) == 200)
    detail = c.get(f"/api/payments/{payment['id']}/", headers=student.headers).json()
    assert detail["status"] == "succeeded" and detail["amount_received"] == 49_900
    slack.wait_for("Payment received: 499.00 USD")
    r = c.post("/api/payments/create-intent/", headers=student.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "ALREADY_PAID"


@pytest.mark.parametrize("tamper", ["forged", "tampered", "stale", "future", "missing",
                                    "malformed"])
def test_bad_webhooks_are_refused(paid: tuple[Server, FakeStripe], c: httpx.Client,
                                  tamper: str) -> None:
    student = register_student(c)
    intent = intent_of(paid, start_payment(c, student)["id"])
    event = succeeded(intent)
    now = int(time.time())
    if tamper == "forged":
        r = deliver(c, event, secret="whsec_not_ours_" + "z" * 20)
    elif tamper == "tampered":
        body, header = signed(event)
        r = c.post(WEBHOOK, content=body.replace(b"49900", b"49901"),
                   headers={"Stripe-Signature": header})
    elif tamper in ("stale", "future"):
        r = deliver(c, event, timestamp=now - 1000 if tamper == "stale" else now + 1000)
    elif tamper == "missing":
        r = c.post(WEBHOOK, json=event)
    else:
        body, header = signed({"not": "an event"})
        r = c.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("WEBHOOK_SIGNATURE_INVALID",
                                         "WEBHOOK_TIMESTAMP_OUT_OF_RANGE", "MALFORMED_WEBHOOK")
    time.sleep(0.3)
    assert can_start(c, student) == 402


def _events(server: Server, payment_id: str) -> list[str]:
    from uuid import UUID

    return [type(e).__name__ for e in server.container.store.events.get(UUID(payment_id))]


def test_fifty_concurrent_deliveries_of_one_event_have_one_effect(
    paid: tuple[Server, FakeStripe], c: httpx.Client,
) -> None:
    server = paid[0]
    student = register_student(c)
    payment = start_payment(c, student)
    event = succeeded(intent_of(paid, payment["id"]))
    codes: list[int] = []

    def send() -> None:
        with server.client() as own:
            codes.append(deliver(own, event).status_code)

    threads = [threading.Thread(target=send) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [200] * 50
    assert _events(server, payment["id"]).count("Succeeded") == 1
    r = deliver(c, event)  # a later replay is recognised as such
    assert r.json().get("duplicate") is True


def test_out_of_order_deliveries_end_in_the_same_state(
    paid: tuple[Server, FakeStripe], c: httpx.Client,
) -> None:
    finals = []
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0, 0, 1]):
        student = register_student(c)
        payment = start_payment(c, student)
        intent = intent_of(paid, payment["id"])
        events = [
            stripe_event("payment_intent.payment_failed", {
                "id": intent, "last_payment_error": {"message": "card declined"}}),
            succeeded(intent),
            stripe_event("charge.refunded", {"id": "ch_1", "payment_intent": intent,
                                             "amount_refunded": 49_900}),
        ]
        positions = []
        for i in order:
            r = deliver(c, events[i])
            assert r.status_code == 200
            positions.append(int(r.headers.get("X-Position", 0)))  # none for a duplicate
        r = c.get(f"/api/payments/{payment['id']}/",
                  headers={**student.headers, "X-Position": str(max(positions))})
        finals.append(r.json()["status"])
        wait_until(lambda student=student: can_start(c, student) == 402)
    assert finals == ["refunded"] * 3


def test_amount_mismatch_is_refused_and_recorded(paid: tuple[Server, FakeStripe],
                                                 c: httpx.Client) -> None:
    student = register_student(c)
    payment = start_payment(c, student)
    assert deliver(c, succeeded(intent_of(paid, payment["id"]), amount=100)).status_code == 200
    time.sleep(0.5)
    assert can_start(c, student) == 402
    assert "AmountMismatched" in _events(paid[0], payment["id"])
    detail = c.get(f"/api/payments/{payment['id']}/", headers=student.headers).json()
    assert detail["status"] == "amount_mismatch" and detail["amount_received"] == 100


def test_paying_with_someone_elses_email_grants_them_nothing(
    paid: tuple[Server, FakeStripe], c: httpx.Client,
) -> None:
    payer, other = register_student(c), register_student(c)
    payment = start_payment(c, payer)
    event = succeeded(intent_of(paid, payment["id"]), receipt_email=other.email,
                      metadata={"account_id": other.id})
    assert deliver(c, event).status_code == 200
    wait_until(lambda: can_start(c, payer) == 200)
    assert can_start(c, other) == 402
    assert c.get(f"/api/payments/{payment['id']}/", headers=other.headers).status_code == 404
    mine = c.get("/api/payments/", headers=other.headers).json()
    assert mine["count"] == 0


def test_refund_requested_by_the_student_approved_by_an_admin(
    paid: tuple[Server, FakeStripe], c: httpx.Client,
) -> None:
    server, fake = paid
    student, other = register_student(c), register_student(c)
    admin = make_staff(server, c, Role.ADMIN)
    payment = start_payment(c, student)
    pid = payment["id"]
    intent = intent_of(paid, pid)
    deliver(c, succeeded(intent))
    wait_until(lambda: can_start(c, student) == 200)
    assert c.post(f"/api/payments/{pid}/refund-request/", headers=other.headers,
                  json={}).status_code == 404
    r = c.post(f"/api/payments/{pid}/refund/", headers=admin.headers, json={"approve": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "NO_REFUND_REQUEST"
    r = c.post(f"/api/payments/{pid}/refund-request/", headers=student.headers,
               json={"reason": "changed my mind"})
    assert r.status_code == 200 and r.json()["refund"] == "requested"
    assert c.post(f"/api/payments/{pid}/refund/", headers=student.headers,
                  json={"approve": True}).status_code == 403
    r = c.post(f"/api/payments/{pid}/refund/", headers=admin.headers,
               json={"approve": True, "reason": "within 14 days"})
    assert r.status_code == 200
    wait_until(lambda: any(p.get("payment_intent") == intent for p, _ in fake.refunds()))
    [key] = [k for p, k in fake.refunds() if p.get("payment_intent") == intent]
    assert key == f"refund-{pid}"
    wait_until(lambda: c.get(f"/api/payments/{pid}/", headers=student.headers).json()[
        "refund"] == "submitted")
    deliver(c, stripe_event("charge.refunded", {"id": "ch_2", "payment_intent": intent,
                                                "amount_refunded": 49_900}))
    wait_until(lambda: c.get(f"/api/payments/{pid}/", headers=student.headers).json()[
        "status"] == "refunded")
    wait_until(lambda: can_start(c, student) == 402)
    listed = c.get("/api/payments/", headers=admin.headers).json()
    assert listed["count"] >= 2


def test_without_stripe_configured_payments_say_so(client: httpx.Client, student: User,
                                                   tmp_path: Path) -> None:
    r = client.post("/api/payments/create-intent/", headers=student.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PAYMENTS_NOT_CONFIGURED"
    body, header = signed(stripe_event("payment_intent.succeeded", {"id": "pi_x"}))
    r = client.post(WEBHOOK, content=body, headers={"Stripe-Signature": header})
    assert r.status_code == 409


def test_a_refund_closes_every_student_action_on_the_track(
    paid: tuple[Server, FakeStripe], c: httpx.Client,
) -> None:
    student = register_student(c)
    pid = start_payment(c, student)["id"]
    intent = intent_of(paid, pid)
    deliver(c, succeeded(intent))
    wait_until(lambda: can_start(c, student) == 200)
    sub = c.post("/api/curriculum/submissions/", headers=student.headers, json={
        "project_id": P1, "deliverables": {"findings_summary": "draft"}})
    assert sub.status_code == 201, sub.text
    deliver(c, stripe_event("charge.refunded", {"id": "ch_9", "payment_intent": intent,
                                                "amount_refunded": 49_900}))
    wait_until(lambda: can_start(c, student) == 402)
    for method, path, body in [
        ("POST", "/api/curriculum/progress/", {"project_id": P1, "action": "complete_step",
                                               "step": 1}),
        ("POST", "/api/curriculum/submissions/", {"project_id": P1}),
        ("PUT", f"/api/curriculum/submissions/{sub.json()['id']}/", {"submit": True}),
        ("POST", "/api/users/workspace/create/", None),
    ]:
        r = c.request(method, path, headers=student.headers, json=body)
        assert r.status_code == 402, (path, r.text)
        assert r.json()["error"]["code"] == "PAYMENT_REQUIRED"
    upload = c.post(f"/api/curriculum/submissions/{sub.json()['id']}/deliverables/"
                    "findings_summary/file/", headers=student.headers,
                    files={"file": ("a.txt", b"text")})
    assert upload.status_code == 402
    # What was there stays readable.
    assert c.get(f"/api/curriculum/submissions/{sub.json()['id']}/",
                 headers=student.headers).status_code == 200
