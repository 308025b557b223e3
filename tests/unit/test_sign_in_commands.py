"""Signing in with a provider on the in-memory log, with a fake provider and flow store:
given accounts and identities, when a flow completes or a ticket is redeemed, then the
account signed in, the events recorded, or the error raised."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

import pytest

from application.accounts import AccountCommands
from application.auth import AuthCommands, Challenge, LoginLimits, Unauthenticated
from application.authorization import Actor
from application.eventstore import EventStore
from application.ports import (
    IdentityRefused,
    PendingSignIn,
    ProviderAuthorization,
    ProviderIdentity,
    SignInTicket,
)
from application.signin import ProviderNotConfigured, ProviderSignIn, clean_name
from domain.accounts import Account, IdentityClaim
from domain.errors import Conflict, Forbidden, Gone, Invalid, NotFound
from domain.roles import Role, Track
from domain.students import Student
from infrastructure.jwt_tokens import JwtTokens
from tests.unit.fakes import (
    Clock,
    Credentials,
    Hasher,
    Limiter,
    OneTime,
    Sessions,
    event_names,
    in_memory_store,
)

PASSWORD = "correct horse battery staple"
ISSUER = "https://accounts.example"
BROWSER_COOKIE = "browser-1"


class Provider:
    """Answers each code with the identity the test put there; a missing one is refused."""

    def __init__(self) -> None:
        self.people: dict[str, ProviderIdentity] = {}
        self.exchanged: list[tuple[str, str, str, str | None]] = []
        self.flows = 0

    def authorization(self, redirect_uri: str) -> ProviderAuthorization:
        self.flows += 1
        state = f"state-{self.flows}"
        return ProviderAuthorization(f"{ISSUER}/auth?state={state}&redirect={redirect_uri}",
                                     state, f"verifier-{self.flows}", f"nonce-{self.flows}")

    def identity(self, code: str, redirect_uri: str, verifier: str, nonce: str | None
                 ) -> ProviderIdentity:
        self.exchanged.append((code, redirect_uri, verifier, nonce))
        if code not in self.people:
            raise IdentityRefused("unknown code")
        return self.people.pop(code)  # a code works once


@dataclass
class Flows:
    flows: dict[str, tuple[str, PendingSignIn]] = field(default_factory=dict)
    tickets: dict[str, SignInTicket] = field(default_factory=dict)

    def begin(self, state: str, browser: str, flow: PendingSignIn, ttl_seconds: int) -> None:
        self.flows[state] = (browser, flow)

    def finish(self, state: str, browser: str) -> PendingSignIn | None:
        found = self.flows.pop(state, None)
        return found[1] if found and found[0] == browser else None

    def issue_ticket(self, ticket: SignInTicket, ttl_seconds: int) -> str:
        token = f"ticket-{len(self.tickets) + 1}"
        self.tickets[token] = ticket
        return token

    def ticket(self, token: str) -> SignInTicket | None:
        return self.tickets.get(token)

    def redeem_ticket(self, token: str) -> SignInTicket | None:
        return self.tickets.pop(token, None)


@dataclass
class World:
    store: EventStore
    accounts: AccountCommands
    sign_in: ProviderSignIn
    provider: Provider
    flows: Flows
    credentials: Credentials
    sessions: Sessions

    def person(self, code: str, subject: str = "sub-1", email: str | None = "ada@example.com",
               name: str = "Ada Lovelace") -> None:
        self.provider.people[code] = ProviderIdentity("google", ISSUER, subject, email, name)

    def begin(self, track: Track | None = None, next_url: str | None = None) -> str:
        """A flow begun in the browser; returns its state."""
        begun = self.sign_in.begin("google", track, next_url)
        assert begun.url.startswith(f"{ISSUER}/auth")
        state = next(s for s, (b, _) in self.flows.flows.items() if b == begun.browser)
        # The test's browser keeps one cookie value: rebind the flow to it.
        self.flows.flows[state] = (BROWSER_COOKIE, self.flows.flows[state][1])
        return state

    def complete(self, code: str, track: Track | None = None, next_url: str | None = None):
        return self.sign_in.complete("google", BROWSER_COOKIE, self.begin(track, next_url),
                                     code, None)

    def register(self, email: str = "ada@example.com") -> UUID:
        return self.accounts.register_student(email, "Ada", PASSWORD, Track.DATA_PROFESSIONAL
                                              ).account_id


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        credentials, sessions, hasher = Credentials(), Sessions(), Hasher()
        tokens = JwtTokens("unit-" + "s" * 40, "apranova", "apranova-api", 900, 3600)
        auth = AuthCommands(store, credentials, hasher, sessions, tokens, OneTime(),
                            Limiter(), Clock(), LoginLimits(per_account=3, per_ip=100))
        provider, flows = Provider(), Flows()
        sign_in = ProviderSignIn(
            store, auth, credentials, {"google": provider}, flows,
            lambda name: f"https://lms.example/api/auth/oauth/{name}/callback/",
            frozenset({"https://lms.example", "http://frontend.example"}))
        yield World(store, AccountCommands(store, credentials, hasher, sessions), sign_in,
                    provider, flows, credentials, sessions)


def code_of(error: pytest.ExceptionInfo[Exception]) -> str:
    return getattr(error.value, "code", "")


# -- the flow --------------------------------------------------------------------------------

def test_the_flow_remembers_verifier_nonce_track_and_next(world: World) -> None:
    state = world.begin(Track.FULL_STACK, "http://frontend.example/done")
    _, flow = world.flows.flows[state]
    assert flow == PendingSignIn("google", "verifier-1", "nonce-1", "FSD",
                                 "http://frontend.example/done")


def test_the_code_is_exchanged_with_the_flows_verifier_nonce_and_callback(
        world: World) -> None:
    world.person("c1")
    world.complete("c1", Track.DATA_PROFESSIONAL)
    assert world.provider.exchanged == [
        ("c1", "https://lms.example/api/auth/oauth/google/callback/", "verifier-1", "nonce-1")]


@pytest.mark.parametrize("target", ["https://evil.example/x", "javascript:alert(1)",
                                    "//lms.example/", "https://user@lms.example/",
                                    "https://lms.example.evil/"])
def test_next_must_be_on_an_allowed_origin(world: World, target: str) -> None:
    with pytest.raises(Invalid) as error:
        world.sign_in.begin("google", None, target)
    assert code_of(error) == "NEXT_NOT_ALLOWED" and world.flows.flows == {}


def test_a_provider_not_configured_is_not_found(world: World) -> None:
    with pytest.raises(ProviderNotConfigured) as error:
        world.sign_in.begin("github", None, None)
    assert isinstance(error.value, NotFound) and code_of(error) == "PROVIDER_NOT_CONFIGURED"


def test_a_new_person_with_a_track_is_registered_verified_and_linked(world: World) -> None:
    world.person("c1", name="  Ada\x00 Lovelace\n")
    outcome = world.complete("c1", Track.DATA_PROFESSIONAL)
    assert outcome.kind == "signed_in" and outcome.logged_in is not None
    user = outcome.logged_in.user
    assert (user.email, user.role, user.track, user.name) == (
        "ada@example.com", "student", "DP", "Ada\ufffd Lovelace")
    assert event_names(world.store, user.id) == ["Registered", "EmailVerified",
                                                 "IdentityLinked"]
    claim = world.store.load(IdentityClaim, IdentityClaim.id_for(ISSUER, "sub-1"))
    assert claim.account_id == user.id
    assert world.credentials.password_hash(user.id) is None


def test_a_known_identity_signs_in_to_its_account_whatever_its_email_now(
        world: World) -> None:
    world.person("c1")
    first = world.complete("c1", Track.DATA_PROFESSIONAL).logged_in
    world.person("c2", email="renamed@example.com")
    again = world.complete("c2").logged_in
    assert first is not None and again is not None and again.user.id == first.user.id
    assert len(world.sessions.live) == 2


def test_without_a_track_a_signup_ticket_waits_and_then_registers(world: World) -> None:
    world.person("c1")
    outcome = world.complete("c1")
    assert (outcome.kind, outcome.email, outcome.logged_in) == ("signup", "ada@example.com",
                                                                 None)
    assert outcome.ticket is not None
    with pytest.raises(Invalid) as error:
        world.sign_in.redeem(outcome.ticket, actor=None, password=None, track=None,
                             client_ip="ip")
    assert code_of(error) == "TRACK_REQUIRED" and outcome.ticket in world.flows.tickets
    done = world.sign_in.redeem(outcome.ticket, actor=None, password=None,
                                track=Track.FULL_STACK, client_ip="ip")
    assert done.user.track == "FSD"
    with pytest.raises(Gone):
        world.sign_in.redeem(outcome.ticket, actor=None, password=None,
                             track=Track.FULL_STACK, client_ip="ip")


def test_an_unverified_email_creates_nothing(world: World) -> None:
    world.person("c1", email=None)
    with pytest.raises(Forbidden) as error:
        world.complete("c1", Track.DATA_PROFESSIONAL)
    assert code_of(error) == "EMAIL_NOT_VERIFIED"
    assert world.store.find(IdentityClaim, IdentityClaim.id_for(ISSUER, "sub-1")) is None


def test_an_existing_email_links_only_with_the_accounts_password(world: World) -> None:
    owner = world.register()
    world.person("c1")
    outcome = world.complete("c1", Track.FULL_STACK)
    assert outcome.kind == "link" and outcome.ticket is not None
    assert "IdentityLinked" not in event_names(world.store, owner)
    for password, code in ((None, "LINK_PROOF_REQUIRED"),
                           ("wrong password 123", "INVALID_CREDENTIALS")):
        with pytest.raises(Unauthenticated) as error:
            world.sign_in.redeem(outcome.ticket, actor=None, password=password, track=None,
                                 client_ip="ip")
        assert code_of(error) == code
    done = world.sign_in.redeem(outcome.ticket, actor=None, password=PASSWORD, track=None,
                                client_ip="ip")
    assert done.user.id == owner and done.user.track == "DP"  # the account's, not the flow's
    assert event_names(world.store, owner)[-1] == "IdentityLinked"


def test_a_session_of_the_account_itself_is_proof_but_not_anothers(world: World) -> None:
    owner, other = world.register(), world.register("grace@example.com")
    world.person("c1")
    ticket = world.complete("c1").ticket
    assert ticket is not None
    with pytest.raises(Unauthenticated) as error:
        world.sign_in.redeem(ticket, actor=Actor(other, Role.STUDENT), password=None,
                             track=None, client_ip="ip")
    assert code_of(error) == "LINK_PROOF_REQUIRED"
    done = world.sign_in.redeem(ticket, actor=Actor(owner, Role.STUDENT), password=None,
                                track=None, client_ip="ip")
    assert done.user.id == owner


def test_with_next_a_sign_in_becomes_a_ticket_and_no_session_is_made_yet(
        world: World) -> None:
    world.person("c1")
    outcome = world.complete("c1", Track.DATA_PROFESSIONAL, "http://frontend.example/x")
    assert (outcome.kind, outcome.logged_in, outcome.next_url) == (
        "signed_in", None, "http://frontend.example/x")
    assert outcome.ticket is not None and world.sessions.live == {}
    done = world.sign_in.redeem(outcome.ticket, actor=None, password=None, track=None,
                                client_ip="ip")
    assert done.user.email == "ada@example.com" and len(world.sessions.live) == 1


def test_a_deactivated_account_does_not_sign_in_by_provider(world: World) -> None:
    world.person("c1")
    user = world.complete("c1", Track.DATA_PROFESSIONAL).logged_in
    assert user is not None
    root = Actor(world.accounts.create_administrator(
        "root@example.com", "Root", PASSWORD, Role.SUPERADMIN).account_id, Role.SUPERADMIN)
    world.accounts.deactivate(root, user.user.id, "left")
    world.person("c2")
    with pytest.raises(Forbidden) as error:
        world.complete("c2")
    assert code_of(error) == "ACCOUNT_INACTIVE"


# -- refusals ------------------------------------------------------------------------------

def test_a_state_is_single_use_bound_to_its_browser_and_its_provider(world: World) -> None:
    world.person("c1")
    state = world.begin(Track.DATA_PROFESSIONAL)
    for browser in (None, "another-browser"):
        with pytest.raises(Unauthenticated) as error:
            world.sign_in.complete("google", browser, state, "c1", None)
        assert code_of(error) == "INVALID_STATE"
    # Refused from another browser, the state is gone for its own too.
    with pytest.raises(Unauthenticated):
        world.sign_in.complete("google", BROWSER_COOKIE, state, "c1", None)
    assert world.provider.exchanged == []


def test_a_provider_error_uses_up_the_state_and_exchanges_nothing(world: World) -> None:
    state = world.begin()
    with pytest.raises(Unauthenticated) as error:
        world.sign_in.complete("google", BROWSER_COOKIE, state, None, "access_denied")
    assert code_of(error) == "PROVIDER_DENIED" and "access_denied" in str(error.value)
    assert world.flows.flows == {} and world.provider.exchanged == []


def test_a_code_the_provider_refuses_signs_nobody_in(world: World) -> None:
    with pytest.raises(Unauthenticated) as error:
        world.complete("never-issued", Track.DATA_PROFESSIONAL)
    assert code_of(error) == "PROVIDER_REFUSED" and world.sessions.live == {}


def test_an_unknown_ticket_is_gone(world: World) -> None:
    with pytest.raises(Gone) as error:
        world.sign_in.redeem("no-such", actor=None, password=None, track=None,
                             client_ip="ip")
    assert code_of(error) == "TICKET_INVALID"


# -- unlinking -------------------------------------------------------------------------------

def test_unlinking_releases_the_identity_for_another_account(world: World) -> None:
    owner = world.register()
    world.person("c1")
    ticket = world.complete("c1").ticket
    assert ticket is not None
    world.sign_in.redeem(ticket, actor=None, password=PASSWORD, track=None, client_ip="ip")
    actor = Actor(owner, Role.STUDENT)
    assert world.sign_in.identities(actor) == {"google": ISSUER}
    assert world.sign_in.unlink(actor, "google") > 0
    assert event_names(world.store, owner)[-1] == "IdentityUnlinked"
    assert world.sign_in.identities(actor) == {}
    assert world.store.load(IdentityClaim, IdentityClaim.id_for(ISSUER, "sub-1")
                            ).account_id is None
    # Now the identity is free: a fresh person with it registers.
    world.person("c2", email="new@example.com")
    fresh = world.complete("c2", Track.DATA_PROFESSIONAL).logged_in
    assert fresh is not None and fresh.user.id != owner


def test_the_only_sign_in_method_of_an_account_stays(world: World) -> None:
    world.person("c1")
    user = world.complete("c1", Track.DATA_PROFESSIONAL).logged_in
    assert user is not None
    with pytest.raises(Conflict) as error:
        world.sign_in.unlink(Actor(user.user.id, Role.STUDENT), "google")
    assert code_of(error) == "LAST_SIGN_IN_METHOD"


def test_unlinking_what_is_not_linked_is_not_found(world: World) -> None:
    owner = world.register()
    with pytest.raises(NotFound) as error:
        world.sign_in.unlink(Actor(owner, Role.STUDENT), "google")
    assert code_of(error) == "IDENTITY_NOT_LINKED"


def test_an_identity_claimed_by_one_account_is_refused_to_another() -> None:
    claim = IdentityClaim(issuer=ISSUER, subject="s", account_id=UUID(int=1))
    with pytest.raises(Conflict) as error:
        claim.claim(UUID(int=2))
    assert error.value.code == "IDENTITY_TAKEN"


@pytest.mark.parametrize(("name", "expected"), [
    ("Ada", "Ada"), ("", "ada"), ("\x00\n", "\ufffd"), ("   ", "ada"), ("x" * 400, "x" * 150)])
def test_a_providers_display_name_becomes_one_storable_line(name: str, expected: str) -> None:
    assert clean_name(name, "ada@example.com") == expected


def test_a_student_registered_by_provider_has_the_flows_track(world: World) -> None:
    world.person("c1")
    user = world.complete("c1", Track.FULL_STACK).logged_in
    assert user is not None
    assert world.store.load(Student, Student.id_for(user.user.id)).track is Track.FULL_STACK


def test_an_account_with_two_factor_sign_in_gets_the_challenge_from_a_provider_too(
        world: World) -> None:
    owner = world.register()
    account = world.store.load(Account, owner)
    account.enrol_two_factor(actor_id=owner)
    world.store.commit(account)
    world.person("c1")
    ticket = world.complete("c1").ticket
    assert ticket is not None
    world.sign_in.redeem(ticket, actor=None, password=PASSWORD, track=None, client_ip="ip")
    world.person("c2")
    outcome = world.complete("c2")
    assert isinstance(outcome.logged_in, Challenge) and world.sessions.live == {}
