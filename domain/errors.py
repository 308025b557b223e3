"""Domain errors with stable machine-readable codes; interfaces map each kind to a status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "DOMAIN_ERROR"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class NotFound(DomainError):
    code = "NOT_FOUND"


class Conflict(DomainError):
    """The command contradicts the current state (HTTP 409)."""

    code = "CONFLICT"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Gone(DomainError):
    """A one-time link that was used, has expired or never existed (HTTP 410)."""

    code = "INVALID_OR_EXPIRED_KEY"


class Invalid(DomainError):
    """The command is well-formed but its values break a rule (HTTP 422)."""

    code = "INVALID"


class TooLarge(Invalid):
    """Input over a size limit (HTTP 413)."""

    code = "PAYLOAD_TOO_LARGE"


class PaymentRequired(DomainError):
    """The action needs a completed payment (HTTP 402)."""

    code = "PAYMENT_REQUIRED"
