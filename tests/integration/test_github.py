"""GitHub: OAuth linking, repositories from templates, signed pull-request webhooks.

The GitHub side is a local pytest-httpserver; nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests.conftest import (
    Mailbox,
    Server,
    User,
    login,
    make_settings,
    new_database,
    register_student,
    running_server,
)

SECRET = "github-webhook-secret-" + "s" * 20
TOKEN = "gho_" + "t" * 36
P1 = "dp-01-sql-foundations"


# The PKCE verifiers GitHub's token endpoint received, in order.
verifiers: list[str] = []


@pytest.fixture(scope="module")
def github(smtp: tuple[Mailbox, int], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Server, HTTPServer, list[dict[str, Any]]]]:
    generated: list[dict[str, Any]] = []
    verifiers.clear()
    with HTTPServer(host="127.0.0.1") as fake:
        def token(request: Request) -> Response:
            code = request.form.get("code")
            verifiers.append(request.form.get("code_verifier", ""))
            body = ({"access_token": TOKEN, "token_type": "bearer", "scope": "repo"}
                    if code == "good-code" else {"error": "bad_verification_code"})
            return Response(json.dumps(body), content_type="application/json")

        def user(request: Request) -> Response:
            assert request.headers["Authorization"] == f"Bearer {TOKEN}"
            return Response(json.dumps({"login": "ada-lovelace"}),
                            content_type="application/json")

        def generate(request: Request) -> Response:
            body = json.loads(request.data)
            generated.append({"path": request.path, "body": body,
                              "auth": request.headers.get("Authorization")})
            full = f"{body['owner']}/{body['name']}"
            return Response(json.dumps({"full_name": full,
                                        "html_url": f"https://github.com/{full}"}),
                            status=201, content_type="application/json")

        fake.expect_request("/login/oauth/access_token", method="POST").respond_with_handler(
            token)
        fake.expect_request("/user").respond_with_handler(user)
        fake.expect_request(f"/repos/apranova-templates/{P1}/generate",
                            method="POST").respond_with_handler(generate)
        with new_database() as url:
            settings = make_settings(
                url, smtp[1], tmp_path_factory.mktemp("gh"), github_client_id="Iv1.test",
                github_client_secret="client-secret", github_api_base=fake.url_for("/"),
                github_oauth_base=fake.url_for("/"), github_webhook_secret=SECRET)
            with running_server(settings) as server:
                yield server, fake, generated


@pytest.fixture
def c(github: tuple[Server, HTTPServer, list[dict[str, Any]]]) -> Iterator[httpx.Client]:
    with github[0].client() as client:
        yield client


def connect(c: httpx.Client, student: User) -> dict[str, list[str]]:
    url = c.get("/api/users/github/connect/", headers=student.headers).json()["authorize_url"]
    query = parse_qs(urlparse(url).query)
    assert query["client_id"] == ["Iv1.test"] and query["scope"] == ["repo"]
    return query


def link(c: httpx.Client, student: User, state: str | None = None) -> httpx.Response:
    """The frontend that got GitHub's redirect hands code and state on, as the student."""
    state = state or connect(c, student)["state"][0]
    return c.get("/api/users/github/callback/", headers=student.headers,
                 params={"code": "good-code", "state": state})


def pull_request(action: str, number: int = 7, merged: bool = False,
                 repo: str = f"ada-lovelace/{P1}") -> dict[str, Any]:
    return {"action": action, "number": number,
            "repository": {"full_name": repo},
            "pull_request": {"number": number, "merged": merged,
                             "html_url": f"https://github.com/{repo}/pull/{number}",
                             "head": {"sha": "abc123"}}}


def send(c: httpx.Client, payload: dict[str, Any], delivery: str | None = None,
         secret: str = SECRET, event: str = "pull_request") -> httpx.Response:
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return c.post("/api/github/webhook/", content=body, headers={
        "X-Hub-Signature-256": signature, "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json"})


def wait_until(check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def test_oauth_link_stores_the_token_encrypted_and_never_in_events(
    github: tuple[Server, HTTPServer, list[dict[str, Any]]], c: httpx.Client,
) -> None:
    server = github[0]
    student = register_student(c)
    r = link(c, student)
    assert r.status_code == 200 and r.json() == {"github_username": "ada-lovelace"}
    with server.container.pool.connection() as conn:
        stored = conn.execute("SELECT value FROM auth_secrets WHERE owner = %s",
                              (student.id,)).fetchone()
    assert stored is not None and TOKEN.encode() not in bytes(stored[0])
    with server.container.pool.connection() as conn:
        rows = conn.execute("SELECT state FROM apranova_events").fetchall()
    assert not any(TOKEN.encode() in bytes(row[0]) for row in rows)


def test_the_state_is_single_use_bound_to_its_account_and_session_with_pkce(
    github: tuple[Server, HTTPServer, list[dict[str, Any]]], c: httpx.Client,
) -> None:
    a, b = register_student(c), register_student(c)
    query = connect(c, a)
    state = query["state"][0]
    assert query["code_challenge_method"] == ["S256"]
    # Another student holding A's state, with their own token and code: refused.
    r = link(c, b, state)
    assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_STATE"
    # A's other session cannot use it either.
    other_session = login(c, a.email)
    assert link(c, other_session, connect(c, other_session)["state"][0]).status_code == 200
    r = link(c, other_session, state)
    assert r.status_code == 401
    # Made up: refused; the real one works once, and the verifier matches the challenge.
    assert link(c, a, "not-a-state").status_code == 401
    fresh = connect(c, a)
    before = len(verifiers)
    assert link(c, a, fresh["state"][0]).status_code == 200
    verifier = verifiers[before]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()
                                         ).rstrip(b"=").decode()
    assert [challenge] == fresh["code_challenge"]
    r = link(c, a, fresh["state"][0])
    assert r.status_code == 401 and r.json()["error"]["code"] == "INVALID_STATE"
    # Without a token the callback is not even tried.
    assert c.get("/api/users/github/callback/", params={
        "code": "good-code", "state": connect(c, a)["state"][0]}).status_code == 401


def test_starting_a_project_creates_the_repository_and_prs_are_recorded(
    github: tuple[Server, HTTPServer, list[dict[str, Any]]], c: httpx.Client,
) -> None:
    generated = github[2]
    student = register_student(c)
    assert link(c, student).status_code == 200
    r = c.post("/api/curriculum/progress/", headers=student.headers,
               json={"project_id": P1, "action": "start"})
    assert r.status_code == 200
    wait_until(lambda: any(g["body"]["owner"] == "ada-lovelace" for g in generated))
    call = generated[-1]
    assert call["body"] == {"owner": "ada-lovelace", "name": P1, "private": True}
    assert call["auth"] == f"Bearer {TOKEN}"
    wait_until(lambda: c.get("/api/curriculum/progress/me/", headers=student.headers).json()[
        "projects"][0]["repository_url"] == f"https://github.com/ada-lovelace/{P1}")

    delivery = str(uuid.uuid4())
    assert send(c, pull_request("opened"), delivery).status_code == 200
    assert send(c, pull_request("opened"), delivery).json()["duplicate"] is True
    assert send(c, pull_request("synchronize")).status_code == 200
    merged = send(c, pull_request("closed", merged=True))
    assert merged.status_code == 200
    # Read at the position the last delivery returned: nothing reads before it lands.
    at = {**student.headers, "X-Position": merged.headers["X-Position"]}
    listed = c.get("/api/curriculum/submissions/", headers=at).json()["results"]
    [submission] = [s for s in listed if s["project_id"] == P1]
    detail = c.get(f"/api/curriculum/submissions/{submission['id']}/", headers=at).json()
    assert detail["pull_requests"]["7"]["state"] == "merged"
    # A merge approves nothing by itself.
    assert detail["status"] == "draft"
    recorded = [h for h in detail["history"] if h["event"] == "PullRequestRecorded"]
    assert [h["detail"]["action"] for h in recorded] == ["opened", "updated", "merged"]


def test_webhook_signatures_and_unknown_repositories(
    github: tuple[Server, HTTPServer, list[dict[str, Any]]], c: httpx.Client,
) -> None:
    r = send(c, pull_request("opened"), secret="someone-else")
    assert r.status_code == 401 and r.json()["error"]["code"] == "WEBHOOK_SIGNATURE_INVALID"
    body = json.dumps(pull_request("opened")).encode()
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    r = c.post("/api/github/webhook/", content=body.replace(b"opened", b"closed"),
               headers={"X-Hub-Signature-256": good, "X-GitHub-Event": "pull_request",
                        "X-GitHub-Delivery": "d-1"})
    assert r.status_code == 401
    r = c.post("/api/github/webhook/", content=body, headers={"X-Hub-Signature-256": good})
    assert r.status_code == 400
    assert send(c, pull_request("opened", repo="stranger/other")).status_code == 200
    assert send(c, {"zen": "Keep it logically awesome."}, event="ping").status_code == 200


def test_github_not_configured_is_a_clear_answer(client: httpx.Client, student: User) -> None:
    r = client.get("/api/users/github/connect/", headers=student.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "GITHUB_NOT_CONFIGURED"
    assert client.post("/api/github/webhook/", content=b"{}").status_code == 409
