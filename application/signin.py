"""Signing in with a provider (Google by OpenID Connect, GitHub by OAuth 2.0).

A provider identity is its issuer and subject, never an email alone. The first sign-in of
a verified email no account has registers a student; a verified email that an account
already has is linked only once that account proves itself (its password, or a session
of it). Flows and half-done sign-ins live outside the log, short-lived and single-use.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from application.auth import AuthCommands, SignedIn, Unauthenticated
from application.authorization import Actor
from application.eventstore import EventStore, retry_on_conflict
from application.ports import (
    CredentialStore,
    IdentityProvider,
    IdentityRefused,
    PendingSignIn,
    ProviderIdentity,
    SignInFlows,
    SignInTicket,
)
from domain.accounts import Account, EmailClaim, IdentityClaim, claim_email, normalise_email
from domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from domain.roles import Role, Track
from domain.students import Student
from domain.text import CONTROL, storable

FLOW_SECONDS = 600
TICKET_SECONDS = 600
MAX_NAME = 150

SIGNED_IN, LINK, SIGNUP = "signed_in", "link", "signup"


class ProviderNotConfigured(NotFound):
    code = "PROVIDER_NOT_CONFIGURED"


@dataclass(frozen=True)
class Begun:
    url: str
    browser: str  # the secret the browser keeps in a cookie: the flow is bound to it


@dataclass(frozen=True)
class Outcome:
    """`logged_in` when done here (tokens, or the two-factor challenge); otherwise a
    ticket of `kind` for the next step."""

    kind: str
    logged_in: SignedIn | None = None
    ticket: str | None = None
    next_url: str | None = None
    email: str | None = None


def clean_name(name: str, email: str) -> str:
    """A provider's display name as one storable line, or the email's local part."""
    line = CONTROL.sub(" ", storable(name)).strip()[:MAX_NAME].strip()
    return line or email.partition("@")[0][:MAX_NAME]


class ProviderSignIn:
    def __init__(self, store: EventStore, auth: AuthCommands, credentials: CredentialStore,
                 providers: Mapping[str, IdentityProvider], flows: SignInFlows,
                 redirect_uri: Callable[[str], str], allowed_origins: frozenset[str]) -> None:
        self.store = store
        self.auth = auth
        self.credentials = credentials
        self.providers = providers
        self.flows = flows
        self.redirect_uri = redirect_uri
        self.allowed_origins = allowed_origins

    def _provider(self, name: str) -> IdentityProvider:
        provider = self.providers.get(name)
        if provider is None:
            raise ProviderNotConfigured(f"Signing in with {name} is not configured here",
                                        provider=name)
        return provider

    def allowed_next(self, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.scheme in ("http", "https") and not parts.username
                and f"{parts.scheme}://{parts.netloc}".lower() in self.allowed_origins)

    # -- the flow ----------------------------------------------------------------------------

    def begin(self, provider: str, track: Track | None, next_url: str | None) -> Begun:
        if next_url is not None and not self.allowed_next(next_url):
            raise Invalid("`next` must be a page of an allowed origin", code="NEXT_NOT_ALLOWED")
        authorization = self._provider(provider).authorization(self.redirect_uri(provider))
        browser = secrets.token_urlsafe(32)
        self.flows.begin(authorization.state, browser, PendingSignIn(
            provider=provider, verifier=authorization.verifier, nonce=authorization.nonce,
            track=track.value if track else None, next_url=next_url), FLOW_SECONDS)
        return Begun(authorization.url, browser)

    def complete(self, provider: str, browser: str | None, state: str, code: str | None,
                 error: str | None) -> Outcome:
        """The provider's redirect. The state is used up whatever follows, so neither a
        replay nor a second code can reuse it."""
        self._provider(provider)
        flow = self.flows.finish(state, browser) if browser else None
        if flow is None or flow.provider != provider:
            raise Unauthenticated("The sign-in state is invalid, used, expired or was begun "
                                  "in another browser", code="INVALID_STATE")
        if error is not None or not code:
            raise Unauthenticated(f"{provider} did not sign you in ({error or 'no code'})",
                                  code="PROVIDER_DENIED")
        try:
            identity = self._provider(provider).identity(code, self.redirect_uri(provider),
                                                         flow.verifier, flow.nonce)
        except IdentityRefused as refused:
            raise Unauthenticated(f"{provider} could not confirm who you are: {refused}",
                                  code="PROVIDER_REFUSED") from refused
        found = self._identified(identity, flow.track)
        if isinstance(found, Outcome):
            outcome = found
        elif flow.next_url is None:
            return Outcome(SIGNED_IN, logged_in=self.auth.sign_in(found))
        else:
            if not found.active:
                raise Forbidden("The account is deactivated", code="ACCOUNT_INACTIVE")
            # No tokens in a URL: the frontend exchanges this ticket for them.
            outcome = Outcome(SIGNED_IN, ticket=self.flows.issue_ticket(
                SignInTicket(SIGNED_IN, identity, found.id, None), TICKET_SECONDS))
        return Outcome(outcome.kind, ticket=outcome.ticket, next_url=flow.next_url,
                       email=outcome.email)

    def _identified(self, identity: ProviderIdentity, track: str | None) -> Account | Outcome:
        """The account this identity signs in to (registered now if new and a track is
        known), or the ticket of the step still missing."""
        claim = self.store.find(IdentityClaim,
                                IdentityClaim.id_for(identity.issuer, identity.subject))
        if claim is not None and claim.account_id is not None:
            return self.store.load(Account, claim.account_id, "User")
        if identity.email is None:
            raise Forbidden(f"{identity.provider} did not confirm an email address",
                            code="EMAIL_NOT_VERIFIED")
        existing = self.auth.account_by_email(identity.email)
        if existing is not None:
            ticket = SignInTicket(LINK, identity, existing.id, None)
            return Outcome(LINK, ticket=self.flows.issue_ticket(ticket, TICKET_SECONDS),
                           email=identity.email)
        if track is None:
            ticket = SignInTicket(SIGNUP, identity, None, None)
            return Outcome(SIGNUP, ticket=self.flows.issue_ticket(ticket, TICKET_SECONDS),
                           email=identity.email)
        return self._register(identity, Track(track))

    # -- the next step -----------------------------------------------------------------------

    def redeem(self, token: str, *, actor: Actor | None, password: str | None,
               track: Track | None, client_ip: str) -> SignedIn:
        """Finish a ticketed sign-in: exchange it, link with proof, or register with a
        track. A failed proof or a missing track leaves the ticket usable."""
        ticket = self.flows.ticket(token)
        if ticket is None:
            raise Gone("The sign-in ticket is invalid, used or expired", code="TICKET_INVALID")
        identity = ticket.identity
        if ticket.kind == LINK:
            assert ticket.account_id is not None and identity.email is not None
            if actor is not None and actor.id == ticket.account_id:
                pass  # a session of the account itself is proof
            elif password is not None:
                proved = self.auth.prove_password(identity.email, password, client_ip)
                if proved.id != ticket.account_id:
                    raise Unauthenticated("Invalid email or password",
                                          code="INVALID_CREDENTIALS")
            else:
                raise Unauthenticated("Sign in to the existing account (its password) to link "
                                      f"{identity.provider} to it", code="LINK_PROOF_REQUIRED")
        if ticket.kind == SIGNUP and track is None:
            raise Invalid("Choose a track to register", code="TRACK_REQUIRED")
        if self.flows.redeem_ticket(token) is None:
            raise Gone("The sign-in ticket is invalid, used or expired", code="TICKET_INVALID")
        if ticket.kind == SIGNUP:
            assert track is not None
            return self.auth.sign_in(self._register(identity, track))
        assert ticket.account_id is not None
        if ticket.kind == LINK:
            self._link(ticket.account_id, identity, actor_id=ticket.account_id)
        return self.auth.sign_in(self.store.load(Account, ticket.account_id, "User"))

    def _register(self, identity: ProviderIdentity, track: Track) -> Account:
        assert identity.email is not None
        email = normalise_email(identity.email)
        account_id = uuid4()
        account = Account(id=account_id, email=email, name=clean_name(identity.name, email),
                          role=Role.STUDENT.value, actor_id=account_id)
        account.verify_email(actor_id=account_id)
        account.link_identity(identity.provider, identity.issuer, identity.subject,
                              actor_id=account_id)
        try:
            # No password: this account signs in with its provider until it sets one.
            claim = claim_email(self.store.find(EmailClaim, EmailClaim.id_for(email)), email,
                                account_id)
            self.store.commit(account, claim,
                              self._claim(identity, account_id),
                              Student(account_id=account_id, track=track.value,
                                      actor_id=account_id))
        except IntegrityError:
            raise Conflict("This email or identity was registered meanwhile; sign in again",
                           code="EMAIL_TAKEN") from None
        return account

    def _link(self, account_id: UUID, identity: ProviderIdentity, actor_id: UUID) -> int:
        def command() -> int:
            account = self.store.load(Account, account_id, "User")
            claim = self._claim(identity, account_id)
            account.link_identity(identity.provider, identity.issuer, identity.subject,
                                  actor_id=actor_id)
            return self.store.commit(account, claim)

        return retry_on_conflict(command)

    def _claim(self, identity: ProviderIdentity, account_id: UUID) -> IdentityClaim:
        """The identity's claim, made for this account or (released earlier) taken again."""
        claim = self.store.find(IdentityClaim,
                                IdentityClaim.id_for(identity.issuer, identity.subject))
        if claim is None:
            return IdentityClaim(issuer=identity.issuer, subject=identity.subject,
                                 account_id=account_id)
        claim.claim(account_id)
        return claim

    def unlink(self, actor: Actor, provider: str) -> int:
        """An account keeps a way to sign in: the last identity of an account without a
        password stays."""
        def command() -> int:
            account = self.store.load(Account, actor.id, "User")
            if provider in account.identities and len(account.identities) == 1 and \
                    self.credentials.password_hash(account.id) is None:
                raise Conflict("Set a password before unlinking your only sign-in method",
                               code="LAST_SIGN_IN_METHOD")
            issuer, subject = account.unlink_identity(provider, actor_id=actor.id)
            claim = self.store.load(IdentityClaim, IdentityClaim.id_for(issuer, subject),
                                    "Identity")
            claim.release()
            return self.store.commit(account, claim)

        return retry_on_conflict(command)

    def identities(self, actor: Actor) -> dict[str, str]:
        """Provider → issuer of the identities linked to the actor's account."""
        account = self.store.load(Account, actor.id, "User")
        return {name: issuer for name, (issuer, _) in account.identities.items()}
