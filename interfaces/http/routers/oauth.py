"""/api/auth/oauth/: signing in with Google (OpenID Connect) or GitHub (OAuth 2.0)."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import Cookie, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, StringConstraints

from application.signin import FLOW_SECONDS, LINK, Outcome
from domain.roles import Track
from interfaces.http.dependencies import (
    OptionalPrincipalDep,
    PrincipalDep,
    ProviderSignInDep,
)
from interfaces.http.routers.auth import (
    ChallengeOut,
    LoginOut,
    client_ip,
    signed_in_out,
)
from interfaces.http.routing import Router
from interfaces.http.schemas import Body, ErrorOut, Password

router = Router(prefix="/api/auth/oauth", tags=["auth"])

Provider = Literal["google", "github"]
COOKIE = "apranova_signin"
COOKIE_PATH = "/api/auth/oauth/"
QueryText = Annotated[str, StringConstraints(max_length=2000)]
Ticket = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ProvidersOut(BaseModel):
    providers: list[str] = Field(description="Providers configured for signing in")


class IdentitiesOut(BaseModel):
    linked: dict[str, str] = Field(description="Provider → issuer of each linked identity")


class PendingOut(BaseModel):
    step: Literal["link", "track"] = Field(description=(
        "`link`: an account has this email; POST the ticket with its password (or with "
        "that account's token) to /api/auth/oauth/complete/. `track`: POST the ticket "
        "with a track to register"))
    ticket: str
    email: str | None
    detail: str


class CompleteIn(Body):
    ticket: Ticket
    password: Password | None = None
    track: Track | None = None


@router.get("/", response_model=ProvidersOut)
def providers(sign_in: ProviderSignInDep) -> ProvidersOut:
    return ProvidersOut(providers=sorted(sign_in.providers))


@router.get("/identities/", response_model=IdentitiesOut)
def identities(p: PrincipalDep, sign_in: ProviderSignInDep) -> IdentitiesOut:
    return IdentitiesOut(linked=sign_in.identities(p.actor))


@router.get("/{provider}/login/", status_code=status.HTTP_302_FOUND,
            response_class=RedirectResponse,
            responses={302: {"description": "To the provider's authorization endpoint"},
                       404: {"model": ErrorOut, "description": "Provider not configured"}})
def login(request: Request, provider: Provider, sign_in: ProviderSignInDep,
          track: Track | None = None,
          next: Annotated[str | None, Query(max_length=2000, description=(
              "Where the browser returns after signing in (an allowed origin); the "
              "sign-in then arrives as a ticket in the URL's fragment"))] = None,
          ) -> RedirectResponse:
    """Authorization Code flow with PKCE (S256), a single-use `state` and (OpenID Connect)
    a `nonce`, bound to this browser by a cookie for ten minutes."""
    begun = sign_in.begin(provider, track, next)
    response = RedirectResponse(begun.url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(COOKIE, begun.browser, max_age=FLOW_SECONDS, path=COOKIE_PATH,
                        httponly=True, samesite="lax",
                        secure=str(request.url.scheme) == "https")
    return response


@router.get("/{provider}/callback/", response_model=LoginOut | ChallengeOut | PendingOut,
            responses={202: {"model": PendingOut, "description": "One more step"},
                       303: {"description": "Back to `next` with the ticket in the fragment"},
                       401: {"model": ErrorOut, "description": "Bad state, denied or refused"}})
def callback(provider: Provider, sign_in: ProviderSignInDep, response: Response,
             state: Annotated[str, Query(min_length=1, max_length=2000)],
             code: Annotated[str | None, Query(max_length=2000)] = None,
             error: Annotated[str | None, Query(max_length=200)] = None,
             browser: Annotated[str | None, Cookie(alias=COOKIE, max_length=200)] = None,
             ) -> LoginOut | ChallengeOut | PendingOut | Response:
    outcome = sign_in.complete(provider, browser, state, code, error)
    if outcome.next_url is not None:
        fragment = urlencode({"status": outcome.kind, "ticket": outcome.ticket or ""})
        redirect = RedirectResponse(f"{outcome.next_url.partition('#')[0]}#{fragment}",
                                    status_code=status.HTTP_303_SEE_OTHER)
        redirect.delete_cookie(COOKIE, path=COOKIE_PATH)
        return redirect
    response.delete_cookie(COOKIE, path=COOKIE_PATH)
    if outcome.logged_in is not None:
        return signed_in_out(outcome.logged_in)
    response.status_code = status.HTTP_202_ACCEPTED
    return _pending(outcome)


def _pending(outcome: Outcome) -> PendingOut:
    if outcome.kind == LINK:
        return PendingOut(step="link", ticket=outcome.ticket or "", email=outcome.email,
                          detail="An account has this email: prove it is yours to link.")
    return PendingOut(step="track", ticket=outcome.ticket or "", email=outcome.email,
                      detail="Choose a track to finish registering.")


# The token is optional here: `{}` among the requirements says so.
@router.post("/complete/", response_model=LoginOut | ChallengeOut,
             openapi_extra={"security": [{"HTTPBearer": []}, {}]},
             responses={403: {"model": ErrorOut, "description": (
                 "The account is deactivated, or not the one the token names")}})
def complete(body: CompleteIn, request: Request, p: OptionalPrincipalDep,
             sign_in: ProviderSignInDep) -> LoginOut | ChallengeOut:
    """Exchange a ticket for the token pair: a `signed_in` ticket as it is, a `link` one
    with the account's password or token, a `track` one with the track."""
    return signed_in_out(sign_in.redeem(body.ticket, actor=p.actor if p else None,
                                    password=body.password, track=body.track,
                                    client_ip=client_ip(request)))


@router.delete("/identities/{provider}/", status_code=status.HTTP_204_NO_CONTENT)
def unlink(provider: Provider, p: PrincipalDep, sign_in: ProviderSignInDep) -> Response:
    position = sign_in.unlink(p.actor, provider)
    return Response(status_code=status.HTTP_204_NO_CONTENT,
                    headers={"X-Position": str(position)})

