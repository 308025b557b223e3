"""Time-based one-time passwords with pyotp (RFC 6238: 6 digits, 30 s, SHA-1, as every
authenticator app expects) and the enrolment QR code as SVG with segno."""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp
import segno


class PyOtpAuthenticator:
    def new_secret(self) -> str:
        return pyotp.random_base32()

    def uri(self, secret: str, account_name: str, issuer: str) -> str:
        return pyotp.TOTP(secret).provisioning_uri(name=account_name, issuer_name=issuer)

    def qr_svg(self, uri: str) -> str:
        return str(segno.make(uri, error="m").svg_inline(scale=4))

    def step_of(self, secret: str, code: str, at: datetime) -> int | None:
        if not (isinstance(code, str) and len(code) == 6 and code.isascii()
                and code.isdigit()):
            return None
        totp = pyotp.TOTP(secret)
        now = totp.timecode(at)
        # The current step and one either side: a phone's clock is rarely exact.
        for step in (now, now - 1, now + 1):
            if hmac.compare_digest(totp.generate_otp(step), code):
                return step
        return None
