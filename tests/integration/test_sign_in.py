"""Signing in with a provider, end to end: Google's flow against a real OpenID Provider
(the certified `oidc-provider` package under Node.js, on 127.0.0.1) and GitHub's against
a local stand-in of its OAuth and REST endpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import (
    PASSWORD,
    Mailbox,
    Server,
    free_port,
    login,
    make_settings,
    new_database,
    running_server,
    unique_email,
)

OIDC = Path(__file__).resolve().parents[1] / "oidc"
CLIENT_ID, CLIENT_SECRET = "apranova-test", "test-secret-0123456789"
GITHUB_TOKEN = "gho_signin"


def install_provider() -> None:
    """The provider's package, installed once from its lock file."""
    if (OIDC / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    assert npm, "Node.js and npm are needed to run the OpenID Provider"
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefix", str(OIDC)], check=True,
                   timeout=300, capture_output=True)


@dataclass
class OpenIDProvider:
    issuer: str

    def will_sign_in(self, sub: str, email: str, verified: bool = True,
                     name: str = "Grace Hopper") -> None:
        """Who signs in at the provider next."""
        httpx.post(f"{self.issuer}/test/account", json={
            "sub": sub, "email": email, "email_verified": verified, "name": name},
        ).raise_for_status()


@dataclass
class World:
    server: Server
    op: OpenIDProvider
    github: HTTPServer
    github_people: dict[str, dict[str, Any]]  # code -> {user, emails}


@pytest.fixture(scope="module")
def world(smtp: tuple[Mailbox, int], tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    install_provider()
    api_port, op_port = free_port(), free_port()
    api = f"http://127.0.0.1:{api_port}"
    log = (tmp_path_factory.mktemp("op") / "provider.log").open("wb")
    node = subprocess.Popen(
        ["node", str(OIDC / "provider.mjs"), str(op_port), CLIENT_ID, CLIENT_SECRET,
         f"{api}/api/auth/oauth/google/callback/"], stdout=log, stderr=subprocess.STDOUT)
    people: dict[str, dict[str, Any]] = {}
    try:
        op = OpenIDProvider(f"http://127.0.0.1:{op_port}")
        deadline = time.monotonic() + 30
        while True:
            assert node.poll() is None, Path(log.name).read_text()
            try:
                httpx.get(f"{op.issuer}/.well-known/openid-configuration").raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the OpenID Provider did not start"
                time.sleep(0.1)
        with HTTPServer(host="127.0.0.1", port=free_port()) as github:
            _github_endpoints(github, people)
            with new_database() as url:
                settings = make_settings(
                    url, smtp[1], tmp_path_factory.mktemp("signin"), public_url=api,
                    google_client_id=CLIENT_ID, google_client_secret=CLIENT_SECRET,
                    google_issuer=op.issuer, github_client_id="Iv1.signin",
                    github_client_secret="gh-secret", github_oauth_base=github.url_for("/"),
                    github_api_base=github.url_for("/"),
                    oauth_allowed_origins=["http://frontend.example"])
                with running_server(settings, port=api_port) as server:
                    yield World(server, op, github, people)
    finally:
        node.terminate()
        node.wait(timeout=10)
        log.close()


def _github_endpoints(github: HTTPServer, people: dict[str, dict[str, Any]]) -> None:
    def token(request: Request) -> Response:
        code = request.form.get("code", "")
        if code not in people or not request.form.get("code_verifier"):
            body: dict[str, Any] = {"error": "bad_verification_code"}
        else:
            body = {"access_token": f"{GITHUB_TOKEN}-{code}", "token_type": "bearer"}
        return Response(json.dumps(body), content_type="application/json")

    def person(request: Request) -> dict[str, Any] | None:
        auth = request.headers.get("Authorization", "")
        return people.get(auth.removeprefix(f"Bearer {GITHUB_TOKEN}-"))

    def user(request: Request) -> Response:
        found = person(request)
        return Response(json.dumps(found["user"] if found else {}),
                        status=200 if found else 401, content_type="application/json")

    def emails(request: Request) -> Response:
        found = person(request)
        return Response(json.dumps(found["emails"] if found else []),
                        status=200 if found else 401, content_type="application/json")

    github.expect_request("/login/oauth/access_token", method="POST").respond_with_handler(
        token)
    github.expect_request("/user").respond_with_handler(user)
    github.expect_request("/user/emails").respond_with_handler(emails)


# -- driving a browser through the flow -----------------------------------------------------

def start(browser: httpx.Client, world: World, provider: str = "google",
          **params: str) -> tuple[str, dict[str, str]]:
    r = browser.get(f"{world.server.url}/api/auth/oauth/{provider}/login/", params=params)
    assert r.status_code == 302, r.text
    location = r.headers["location"]
    return location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def at_provider(browser: httpx.Client, authorize_url: str) -> str:
    """Follow the provider's pages (login and consent answered) back to our callback."""
    url = authorize_url
    for _ in range(10):
        r = browser.get(url)
        assert r.status_code in (302, 303), r.text
        url = str(r.url.join(r.headers["location"]))
        if "/api/auth/oauth/" in url:
            return url
    raise AssertionError("the provider never sent the browser back")


def sign_in(world: World, browser: httpx.Client | None = None, **params: str
            ) -> httpx.Response:
    browser = browser or httpx.Client(timeout=30)
    authorize, _ = start(browser, world, **params)
    return browser.get(at_provider(browser, authorize))


def event_names(world: World, account_id: str) -> list[str]:
    return [type(e).__name__ for e in world.server.container.store.events.get(
        uuid.UUID(account_id))]


def accounts_with(world: World, email: str) -> int:
    with psycopg.connect(world.server.container.settings.database_url or "") as conn:
        row = conn.execute("SELECT count(*) FROM rm_users WHERE email = %s",
                           (email,)).fetchone()
    return int(row[0]) if row else 0


# -- Google: OpenID Connect against a real provider ------------------------------------------

def test_the_login_redirects_with_state_nonce_pkce_and_our_callback(world: World) -> None:
    with httpx.Client() as browser:
        location, query = start(browser, world, track="DP")
        discovery = httpx.get(f"{world.op.issuer}/.well-known/openid-configuration").json()
        assert location.startswith(discovery["authorization_endpoint"] + "?")
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        assert query["redirect_uri"] == f"{world.server.url}/api/auth/oauth/google/callback/"
        assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
        assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
        assert set(query["scope"].split()) == {"openid", "email", "profile"}
        cookie = next(c for c in browser.cookies.jar if c.name == "apranova_signin")
        assert cookie.path == "/api/auth/oauth/" and cookie.has_nonstandard_attr("HttpOnly")


def test_a_new_verified_person_with_a_track_is_registered_and_signed_in(world: World) -> None:
    email, sub = unique_email("grace"), f"sub-{uuid.uuid4().hex}"
    world.op.will_sign_in(sub, email)
    r = sign_in(world, track="FSD")
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"access", "refresh", "user"}
    assert (body["user"]["email"], body["user"]["role"], body["user"]["track"],
            body["user"]["name"]) == (email, "student", "FSD", "Grace Hopper")
    assert event_names(world, body["user"]["id"])[:3] == [
        "Registered", "EmailVerified", "IdentityLinked"]
    me = httpx.get(f"{world.server.url}/api/auth/oauth/identities/",
                   headers={"Authorization": f"Bearer {body['access']}"})
    assert me.json() == {"linked": {"google": world.op.issuer}}
    # The same identity again: the same account, nothing new registered.
    world.op.will_sign_in(sub, email)
    again = sign_in(world)
    assert again.status_code == 200 and again.json()["user"]["id"] == body["user"]["id"]
    # A password login does not exist for it.
    assert httpx.post(f"{world.server.url}/api/auth/login/", json={
        "email": email, "password": PASSWORD}).status_code == 401


def test_without_a_track_the_ticket_waits_for_one(world: World) -> None:
    email = unique_email("track")
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", email)
    r = sign_in(world)
    assert r.status_code == 202, r.text
    pending = r.json()
    assert (pending["step"], pending["email"]) == ("track", email)
    complete = f"{world.server.url}/api/auth/oauth/complete/"
    missing = httpx.post(complete, json={"ticket": pending["ticket"]})
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "TRACK_REQUIRED")
    done = httpx.post(complete, json={"ticket": pending["ticket"], "track": "DP"})
    assert done.status_code == 200, done.text
    assert (done.json()["user"]["email"], done.json()["user"]["track"]) == (email, "DP")
    used = httpx.post(complete, json={"ticket": pending["ticket"], "track": "DP"})
    assert (used.status_code, used.json()["error"]["code"]) == (410, "TICKET_INVALID")
    assert accounts_with(world, email) <= 1


def test_an_existing_account_links_only_after_proving_itself(world: World) -> None:
    with world.server.client() as c:
        email = unique_email("owner")
        assert c.post("/api/auth/register/", json={
            "email": email, "password": PASSWORD, "name": "Owner", "track": "DP"}
        ).status_code == 201
        owner = login(c, email)
    sub = f"sub-{uuid.uuid4().hex}"
    world.op.will_sign_in(sub, email)
    r = sign_in(world, track="FSD")
    assert r.status_code == 202 and r.json()["step"] == "link", r.text
    ticket = r.json()["ticket"]
    complete = f"{world.server.url}/api/auth/oauth/complete/"
    bare = httpx.post(complete, json={"ticket": ticket})
    assert (bare.status_code, bare.json()["error"]["code"]) == (401, "LINK_PROOF_REQUIRED")
    wrong = httpx.post(complete, json={"ticket": ticket, "password": "not-the-password-1"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "INVALID_CREDENTIALS")
    assert "IdentityLinked" not in event_names(world, owner.id)
    done = httpx.post(complete, json={"ticket": ticket, "password": PASSWORD})
    assert done.status_code == 200, done.text
    assert done.json()["user"]["id"] == owner.id and done.json()["user"]["track"] == "DP"
    assert event_names(world, owner.id)[-1] == "IdentityLinked"
    world.op.will_sign_in(sub, email)
    assert sign_in(world).json()["user"]["id"] == owner.id
    # Unlinking: the account keeps its password, so the identity may go; then it must
    # prove itself again.
    unlinked = httpx.delete(f"{world.server.url}/api/auth/oauth/identities/google/",
                            headers=owner.headers)
    assert unlinked.status_code == 204
    assert event_names(world, owner.id)[-1] == "IdentityUnlinked"
    world.op.will_sign_in(sub, email)
    assert sign_in(world).json()["step"] == "link"


def test_a_signed_in_session_of_the_account_is_proof_enough(world: World) -> None:
    with world.server.client() as c:
        email = unique_email("session")
        c.post("/api/auth/register/", json={
            "email": email, "password": PASSWORD, "name": "S", "track": "DP"})
        owner = login(c, email)
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", email)
    ticket = sign_in(world).json()["ticket"]
    done = httpx.post(f"{world.server.url}/api/auth/oauth/complete/",
                      json={"ticket": ticket}, headers=owner.headers)
    assert done.status_code == 200 and done.json()["user"]["id"] == owner.id


def test_an_account_that_signs_in_only_by_provider_keeps_its_last_identity(
        world: World) -> None:
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", unique_email("only"))
    body = sign_in(world, track="DP").json()
    r = httpx.delete(f"{world.server.url}/api/auth/oauth/identities/google/",
                     headers={"Authorization": f"Bearer {body['access']}"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "LAST_SIGN_IN_METHOD")


def test_an_unverified_email_creates_and_links_nothing(world: World) -> None:
    email = unique_email("unverified")
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", email, verified=False)
    r = sign_in(world, track="DP")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "EMAIL_NOT_VERIFIED")
    assert accounts_with(world, email) == 0


def test_with_next_the_browser_returns_there_with_a_ticket_not_tokens(world: World) -> None:
    email = unique_email("spa")
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", email)
    r = sign_in(world, track="DP", next="http://frontend.example/welcome?x=1")
    assert r.status_code == 303, r.text
    target = urlsplit(r.headers["location"])
    assert (target.netloc, target.path, target.query) == ("frontend.example", "/welcome", "x=1")
    fragment = {k: v[0] for k, v in parse_qs(target.fragment).items()}
    assert fragment["status"] == "signed_in" and "access" not in r.headers["location"]
    done = httpx.post(f"{world.server.url}/api/auth/oauth/complete/",
                      json={"ticket": fragment["ticket"]})
    assert done.status_code == 200 and done.json()["user"]["email"] == email


@pytest.mark.parametrize("target", ["https://evil.example/", "http://frontend.example.evil/",
                                    "javascript:alert(1)", "//evil.example/",
                                    "http://user@frontend.example/"])
def test_next_outside_the_allowed_origins_is_refused(world: World, target: str) -> None:
    r = httpx.get(f"{world.server.url}/api/auth/oauth/google/login/", params={"next": target})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "NEXT_NOT_ALLOWED")


def test_a_tampered_replayed_or_foreign_state_is_refused(world: World) -> None:
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", unique_email("state"))
    browser = httpx.Client(timeout=30)
    authorize, query = start(browser, world, track="DP")
    callback = at_provider(browser, authorize)
    tampered = callback.replace(f"state={query['state']}", f"state={query['state']}x")
    r = browser.get(tampered)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "INVALID_STATE")
    # The same state from another browser (no cookie, or another flow's cookie).
    other = httpx.Client(timeout=30)
    start(other, world)
    r = other.get(callback)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "INVALID_STATE")
    # Refused elsewhere, the state was used up: not even its own browser gets in now.
    r = browser.get(callback)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "INVALID_STATE")


def test_a_callback_cannot_be_replayed_and_a_code_not_reused(world: World) -> None:
    world.op.will_sign_in(f"sub-{uuid.uuid4().hex}", unique_email("replay"))
    browser = httpx.Client(timeout=30)
    authorize, _ = start(browser, world, track="DP")
    callback = at_provider(browser, authorize)
    assert browser.get(callback).status_code == 200
    replay = browser.get(callback)
    assert (replay.status_code, replay.json()["error"]["code"]) == (401, "INVALID_STATE")
    # The used code with a fresh flow's state: the provider refuses it.
    _, fresh = start(browser, world)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    r = browser.get(f"{world.server.url}/api/auth/oauth/google/callback/",
                    params={"state": fresh["state"], "code": code})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "PROVIDER_REFUSED")


def test_a_provider_error_is_a_clear_refusal(world: World) -> None:
    browser = httpx.Client(timeout=30)
    _, query = start(browser, world)
    r = browser.get(f"{world.server.url}/api/auth/oauth/google/callback/",
                    params={"state": query["state"], "error": "access_denied"})
    assert (r.status_code, r.json()["error"]["code"]) == (401, "PROVIDER_DENIED")
    assert "access_denied" in r.json()["error"]["message"]


@pytest.mark.parametrize("query", [
    "state=%00&code=x", "state=s&code=%ED%A0%80", "state=%ED%A0%80", "state=" + "s" * 3000,
    "code=x", "state=s&error=" + "e" * 500, "state=s&code=x&code=y"])
def test_hostile_callback_parameters_are_4xx(world: World, query: str) -> None:
    r = httpx.get(f"{world.server.url}/api/auth/oauth/google/callback/?{query}")
    assert 400 <= r.status_code < 500 and r.json()["status"] == "error", r.text


# -- GitHub: OAuth 2.0 with its user and verified-emails API ---------------------------------

def github_sign_in(world: World, user: dict[str, Any], emails: list[Any], **params: str
                   ) -> httpx.Response:
    browser = httpx.Client(timeout=30)
    location, query = start(browser, world, "github", **params)
    assert location.startswith(world.github.url_for("/login/oauth/authorize"))
    assert (query["client_id"], query["code_challenge_method"]) == ("Iv1.signin", "S256")
    code = uuid.uuid4().hex
    world.github_people[code] = {"user": user, "emails": emails}
    return browser.get(f"{world.server.url}/api/auth/oauth/github/callback/",
                       params={"state": query["state"], "code": code})


def test_github_signs_in_with_its_primary_verified_email(world: World) -> None:
    email, gh_id = unique_email("octo"), int(uuid.uuid4().int % 10**9) + 1
    r = github_sign_in(world, {"id": gh_id, "login": "octo", "name": None}, [
        {"email": unique_email("other"), "primary": False, "verified": True},
        {"email": email, "primary": True, "verified": True}], track="FSD")
    assert r.status_code == 200, r.text
    assert (r.json()["user"]["email"], r.json()["user"]["name"]) == (email, "octo")
    again = github_sign_in(world, {"id": gh_id, "login": "renamed"}, [])
    assert again.status_code == 200 and again.json()["user"]["id"] == r.json()["user"]["id"]


@pytest.mark.parametrize("emails", [
    [{"email": "x@example.com", "primary": True, "verified": False}],
    [{"email": "x@example.com", "primary": False, "verified": True}],
    [], "not a list", [{"email": "bad\x00@example.com", "primary": True, "verified": True}]])
def test_github_without_a_primary_verified_email_creates_nothing(
        world: World, emails: Any) -> None:
    r = github_sign_in(world, {"id": int(uuid.uuid4().int % 10**9) + 1, "login": "x"}, emails,
                       track="DP")
    assert (r.status_code, r.json()["error"]["code"]) == (403, "EMAIL_NOT_VERIFIED")


@pytest.mark.parametrize("user", [{}, {"id": "12"}, {"id": True}, {"id": -1}, []])
def test_github_naming_no_user_is_refused(world: World, user: Any) -> None:
    r = github_sign_in(world, user, [])
    assert (r.status_code, r.json()["error"]["code"]) == (401, "PROVIDER_REFUSED")


def test_a_provider_not_configured_is_404(smtp: tuple[Mailbox, int],
                                         tmp_path_factory: pytest.TempPathFactory) -> None:
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path_factory.mktemp("none"))
        with running_server(settings, background=False) as server, server.client() as c:
            assert c.get("/api/auth/oauth/").json() == {"providers": []}
            for provider in ("google", "github"):
                r = c.get(f"/api/auth/oauth/{provider}/login/")
                assert (r.status_code, r.json()["error"]["code"]) == (
                    404, "PROVIDER_NOT_CONFIGURED")
            assert c.get("/api/auth/oauth/gitlab/login/").status_code == 422
