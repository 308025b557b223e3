"""A local HTTP server answering the Stripe API calls the gateway makes."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import stripe
from werkzeug import Request, Response

from tests.local_http import reply, serve

WEBHOOK_SECRET = "whsec_test_" + "k" * 24


@dataclass
class FakeStripe:
    url: str = ""
    calls: list[tuple[str, dict[str, str], str | None]] = field(default_factory=list)
    by_key: dict[str, dict[str, Any]] = field(default_factory=dict)

    def intents(self) -> list[dict[str, str]]:
        return [params for path, params, _ in self.calls if path == "/v1/payment_intents"]

    def refunds(self) -> list[tuple[dict[str, str], str | None]]:
        return [(params, key) for path, params, key in self.calls if path == "/v1/refunds"]


def signed(payload: dict[str, Any], secret: str = WEBHOOK_SECRET,
           timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload)
    return body.encode(), stripe.WebhookSignature.generate_signature_header(
        body, secret, timestamp=timestamp)


def stripe_event(kind: str, obj: dict[str, Any], event_id: str | None = None
                 ) -> dict[str, Any]:
    return {"id": event_id or f"evt_{secrets.token_hex(8)}", "object": "event", "type": kind,
            "created": int(time.time()), "data": {"object": obj}}


@contextmanager
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    lock = threading.Lock()

    def answer(request: Request) -> Response:
        params = dict(parse_qsl(request.get_data(as_text=True)))
        key = request.headers.get("Idempotency-Key")
        with lock:
            fake.calls.append((request.path, params, key))
            if key and key in fake.by_key:
                body = fake.by_key[key]
            elif request.path == "/v1/payment_intents":
                intent = f"pi_{secrets.token_hex(8)}"
                body = {"id": intent, "object": "payment_intent",
                        "client_secret": f"{intent}_secret_{secrets.token_hex(6)}",
                        "amount": int(params["amount"]), "currency": params["currency"],
                        "status": "requires_payment_method", "metadata": {}}
            elif request.path == "/v1/refunds":
                body = {"id": f"re_{secrets.token_hex(8)}", "object": "refund",
                        "payment_intent": params.get("payment_intent"),
                        "status": "succeeded"}
            else:
                return reply(404, {"error": {"message": "unknown path"}})
            if key:
                fake.by_key[key] = body
        return reply(200, body, {"Request-Id": f"req_{secrets.token_hex(6)}"})

    with serve("POST", answer) as url:
        fake.url = url
        yield fake
