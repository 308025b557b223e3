"""/api/auth/mfa/: two-factor sign-in with an authenticator app (TOTP)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Response, status
from pydantic import BaseModel, Field, StringConstraints

from interfaces.http.dependencies import PrincipalDep, TwoFactorCommandsDep
from interfaces.http.routers.auth import LoginOut, login_out
from interfaces.http.routing import Router
from interfaces.http.schemas import Body

router = Router(prefix="/api/auth/mfa", tags=["auth"])

Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
RecoveryCode = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Challenge = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class StatusOut(BaseModel):
    enabled: bool
    required: bool = Field(description="Your role must use it (until then you may only enrol)")
    recovery_codes_left: int


class EnrolmentOut(BaseModel):
    secret: str = Field(description="For apps that cannot scan the QR code")
    otpauth_uri: str
    qr_svg: str = Field(description="The otpauth URI as a QR code (SVG)")
    detail: str = "Scan the code, then confirm with the code your app shows."


class CodeIn(Body):
    code: Code


class EnrolledOut(LoginOut):
    recovery_codes: list[str] = Field(description=(
        "Shown this once: each signs in once in place of a code"))


class VerifyIn(Body):
    challenge: Challenge
    code: Code | None = None
    recovery_code: RecoveryCode | None = None


@router.get("/", response_model=StatusOut)
def mfa_status(p: PrincipalDep, two_factor: TwoFactorCommandsDep) -> StatusOut:
    found = two_factor.status(p.actor)
    return StatusOut(enabled=found.enabled, required=found.required,
                     recovery_codes_left=found.recovery_codes_left)


@router.post("/enrol/", response_model=EnrolmentOut)
def enrol(p: PrincipalDep, two_factor: TwoFactorCommandsDep) -> EnrolmentOut:
    """A new secret, not yet active; enrolling again before confirming replaces it."""
    enrolment = two_factor.enrol(p.actor)
    return EnrolmentOut(secret=enrolment.secret, otpauth_uri=enrolment.uri,
                        qr_svg=enrolment.qr_svg)


@router.post("/enrol/confirm/", response_model=EnrolledOut)
def confirm(body: CodeIn, p: PrincipalDep, two_factor: TwoFactorCommandsDep) -> EnrolledOut:
    """The first right code turns it on: recovery codes and a new token pair; every other
    session of the account ends."""
    enrolled = two_factor.confirm(p.actor, body.code)
    return EnrolledOut(**login_out(enrolled.logged_in).model_dump(),
                       recovery_codes=enrolled.recovery_codes)


@router.post("/verify/", response_model=LoginOut)
def verify(body: VerifyIn, two_factor: TwoFactorCommandsDep) -> LoginOut:
    """The second step of signing in: the login's challenge with a code from the app, or
    one of the recovery codes."""
    return login_out(two_factor.verify(body.challenge, body.code, body.recovery_code))


@router.post("/disable/", status_code=status.HTTP_204_NO_CONTENT)
def disable(body: CodeIn, p: PrincipalDep, two_factor: TwoFactorCommandsDep) -> Response:
    position = two_factor.disable(p.actor, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT,
                    headers={"X-Position": str(position)})
