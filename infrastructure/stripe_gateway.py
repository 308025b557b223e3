"""Stripe: payment intents and refunds through StripeClient, and webhook verification."""

from __future__ import annotations

import json
import time
from typing import Any

import stripe

from application.ports import PaymentIntent


class StripeGateway:
    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        addresses: dict[str, str] = {"api": api_base} if api_base else {}
        self.client = stripe.StripeClient(secret_key, base_addresses=addresses,  # type: ignore[arg-type]
                                          max_network_retries=2)

    def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> PaymentIntent:
        intent = self.client.v1.payment_intents.create(
            params={"amount": amount, "currency": currency, "metadata": metadata,
                    "automatic_payment_methods": {"enabled": True}},
            options={"idempotency_key": idempotency_key})
        return PaymentIntent(intent.id, intent.client_secret or "")

    def refund(self, intent_id: str, idempotency_key: str) -> str:
        refund = self.client.v1.refunds.create(params={"payment_intent": intent_id},
                                               options={"idempotency_key": idempotency_key})
        return refund.id


class WebhookRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def verify_stripe_event(payload: bytes, signature: str | None, secret: str,
                        tolerance: int) -> dict[str, Any]:
    """Check the signature over the raw body and the timestamp's age (both ways)."""
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret,
                                              tolerance=tolerance)
    except stripe.SignatureVerificationError as error:
        code = ("WEBHOOK_TIMESTAMP_OUT_OF_RANGE" if "tolerance" in str(error)
                else "WEBHOOK_SIGNATURE_INVALID")
        raise WebhookRejected(code, "Webhook signature verification failed") from None
    except UnicodeDecodeError:
        raise WebhookRejected("MALFORMED_WEBHOOK", "The body is not UTF-8") from None
    stamp = int(dict(part.split("=", 1) for part in (signature or "").split(",")
                     if "=" in part).get("t", "0"))
    # The library refuses old timestamps; a future one is as suspicious.
    if stamp > time.time() + tolerance:
        raise WebhookRejected("WEBHOOK_TIMESTAMP_OUT_OF_RANGE",
                              "The webhook is dated in the future")
    try:
        event = json.loads(payload)
        event["id"], event["type"], event["data"]["object"]
    except (ValueError, KeyError, TypeError):
        raise WebhookRejected("MALFORMED_WEBHOOK", "Not a Stripe event") from None
    return dict(event)
