"""/api/auth/: register, log in, refresh, log out, verify email, reset password."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Request, Response, status
from pydantic import BaseModel, Field, StringConstraints

from application.auth import Challenge, LoggedIn, SignedIn
from domain.roles import Track
from interfaces.http.dependencies import AccountCommandsDep, AuthCommandsDep, PrincipalDep
from interfaces.http.routing import Router
from interfaces.http.schemas import Body, Detail, Email, Name, NewPassword, Password

router = Router(prefix="/api/auth", tags=["auth"])

Token = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class RegisterIn(Body):
    email: Email
    password: NewPassword
    name: Name
    track: Track
    # Self-registration always makes a student; any other role is refused, not ignored.
    role: Literal["student"] = "student"


class SummaryOut(BaseModel):
    id: str
    email: str
    role: str
    track: str | None
    name: str


class RegisteredOut(BaseModel):
    user: SummaryOut
    detail: str


class LoginIn(Body):
    email: Email
    password: Password


class LoginOut(BaseModel):
    access: str
    refresh: str
    user: SummaryOut


class RefreshIn(Body):
    refresh: Token


class TokensOut(BaseModel):
    access: str
    refresh: str


class LogoutIn(Body):
    refresh: Token | None = None


class ResetIn(Body):
    email: Email


class ResetConfirmIn(Body):
    token: Token
    new_password: NewPassword


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/register/", status_code=status.HTTP_201_CREATED, response_model=RegisteredOut)
def register(body: RegisterIn, auth: AuthCommandsDep, accounts: AccountCommandsDep,
             request: Request, response: Response) -> RegisteredOut:
    auth.limit_registrations(client_ip(request))
    result = accounts.register_student(body.email, body.name, body.password, body.track)
    response.headers["X-Position"] = str(result.position)
    return RegisteredOut(
        user=SummaryOut(id=str(result.account_id), email=body.email.lower(), role="student",
                        track=body.track.value, name=body.name),
        detail="Registered. Check your email to confirm your address.",
    )


class ChallengeOut(BaseModel):
    mfa_required: Literal[True] = True
    challenge: str = Field(description="POST it with a code to /api/auth/mfa/verify/")
    expires_in: int
    detail: str = "Enter the code from your authenticator app (or a recovery code)."


def signed_in_out(result: SignedIn) -> LoginOut | ChallengeOut:
    if isinstance(result, Challenge):
        return ChallengeOut(challenge=result.token, expires_in=result.expires_in)
    return login_out(result)


def login_out(result: LoggedIn) -> LoginOut:
    u = result.user
    return LoginOut(
        access=result.tokens.access, refresh=result.tokens.refresh,
        user=SummaryOut(id=str(u.id), email=u.email, role=u.role, track=u.track, name=u.name),
    )


@router.post("/login/", response_model=LoginOut | ChallengeOut)
def login(body: LoginIn, auth: AuthCommandsDep, request: Request) -> LoginOut | ChallengeOut:
    """The token pair; for an account with two-factor sign-in, a challenge instead."""
    return signed_in_out(auth.login(body.email, body.password, client_ip(request)))


@router.post("/token/refresh/", response_model=TokensOut)
def refresh(body: RefreshIn, auth: AuthCommandsDep) -> TokensOut:
    pair = auth.refresh(body.refresh)
    return TokensOut(access=pair.access, refresh=pair.refresh)


@router.post("/logout/", status_code=status.HTTP_204_NO_CONTENT)
def logout(p: PrincipalDep, auth: AuthCommandsDep, body: LogoutIn | None = None) -> Response:
    auth.logout(p.session_id, body.refresh if body else None)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password/reset/", status_code=status.HTTP_202_ACCEPTED, response_model=Detail)
def password_reset(body: ResetIn, auth: AuthCommandsDep, request: Request) -> Detail:
    auth.request_password_reset(body.email, client_ip(request))
    return Detail(detail="If an account exists for this email, a reset link has been sent.")


@router.post("/password/reset/confirm/", response_model=Detail)
def password_reset_confirm(body: ResetConfirmIn, auth: AuthCommandsDep,
                           response: Response) -> Detail:
    position = auth.confirm_password_reset(body.token, body.new_password)
    response.headers["X-Position"] = str(position)
    return Detail(detail="Password changed. Log in with the new password.")


@router.get("/verify-email/{key}/", response_model=Detail)
def verify_email(
    key: Annotated[str, Path(min_length=1, max_length=512)], auth: AuthCommandsDep,
    response: Response,
) -> Detail:
    position = auth.verify_email(key)
    response.headers["X-Position"] = str(position)
    return Detail(detail="Email verified.")
