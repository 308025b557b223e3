"""Text PostgreSQL cannot hold (NUL, lone surrogates) is refused at the boundary with a
4xx in the error envelope; text it can hold goes into the log and comes back unchanged."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from domain.roles import Role
from domain.text import CONTROL, UNSTORABLE
from tests.conftest import PASSWORD, Server, User, make_staff, register_student, unique_email
from tests.integration.test_quizzes_api import generate

pytestmark = pytest.mark.long

HOSTILE = ["x\x00y", "\x00", "a\ud800b", "\udfff", "\ud83d"]


def send(client: httpx.Client, method: str, path: str, body: Any,
         headers: dict[str, str] | None = None) -> httpx.Response:
    """The body as a client may send it: JSON with \\u escapes, lone surrogates too."""
    return client.request(method, path, content=json.dumps(body).encode(),
                          headers={"content-type": "application/json", **(headers or {})})


def refused(r: httpx.Response, status: int = 422) -> None:
    assert r.status_code == status, r.text
    assert r.json()["status"] == "error" and r.json()["error"]["code"]


@pytest.mark.parametrize("text", HOSTILE)
def test_registration_and_profile_refuse_unstorable_text(client: httpx.Client,
                                                         text: str) -> None:
    email = unique_email()
    refused(send(client, "POST", "/api/auth/register/", {
        "email": email, "password": PASSWORD, "name": text, "track": "DP"}))
    # Nothing was recorded: the address is still free.
    r = send(client, "POST", "/api/auth/register/", {
        "email": email, "password": PASSWORD, "name": "Fine", "track": "DP"})
    assert r.status_code == 201, r.text
    student = register_student(client)
    refused(send(client, "PUT", "/api/users/profile/", {"name": text}, student.headers))
    profile = client.get("/api/users/profile/", headers=student.headers).json()
    assert profile["name"] == "Student"


def test_every_body_field_is_checked_nested_and_in_keys(
    server: Server, client: httpx.Client,
) -> None:
    trainer = make_staff(server, client, Role.TRAINER)
    student = register_student(client)
    refused(send(client, "POST", "/api/quiz/quizzes/generate/", {
        "title": "Q\x00", "prompt": "SQL", "num_questions": 2, "track": "DP"}, trainer.headers))
    refused(send(client, "POST", "/api/quiz/quizzes/generate/", {
        "title": "Q", "prompt": "SQL \ud800", "num_questions": 2, "track": "DP"},
        trainer.headers))
    client.post("/api/curriculum/progress/", headers=student.headers, json={
        "project_id": "dp-01-sql-foundations", "action": "start"})
    for deliverables in ({"findings_summary": "a\x00"}, {"find\x00ings": "a"},
                         {"findings_summary": "\udc00"}):
        refused(send(client, "POST", "/api/curriculum/submissions/", {
            "project_id": "dp-01-sql-foundations", "deliverables": deliverables},
            student.headers))
    refused(send(client, "POST", "/api/curriculum/submissions/", {
        "project_id": "dp-01-sql-foundations", "note": "n\x00"}, student.headers))
    quiz = generate(client, trainer, 2)
    questions = quiz["questions"]
    questions[0]["options"][0]["text"] = "opt\x00"
    refused(send(client, "PUT", f"/api/quiz/quizzes/{quiz['id']}/",
                 {"questions": questions}, trainer.headers))
    refused(send(client, "PUT", f"/api/quiz/quizzes/{quiz['id']}/",
                 {"title": "t", "reason": "r\ud800"}, trainer.headers))


@pytest.mark.parametrize("path", [
    "/api/users/?search=a%00b", "/api/curriculum/submissions/?project_id=a%00b",
    "/api/workspaces/?state=a%00b", "/api/users/?search=%ED%A0%80",
    "/api/users/?search=%FF", "/api/quiz/quizzes/?x=%00", "/api/users/a%00b/",
    "/api/curriculum/projects/dp%00/",
])
def test_query_strings_and_paths_with_unstorable_text_are_a_400(
    server: Server, client: httpx.Client, path: str,
) -> None:
    admin = make_staff(server, client, Role.ADMIN)
    refused(client.get(path, headers=admin.headers), 400)
    assert client.get("/api/users/?search=ok", headers=admin.headers).status_code == 200


# All of Unicode, control characters and surrogates included.
ANY_TEXT = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF,
                                 exclude_categories=()), max_size=30)


def _read_back(client: httpx.Client, user: User, r: httpx.Response, path: str) -> Any:
    return client.get(path, headers={**user.headers,
                                     "X-Position": r.headers["X-Position"]}).json()


def _kept(sent: str, stored: str) -> bool:
    """What the API keeps is exactly what was sent."""
    return stored == sent


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANY_TEXT)
def test_any_text_is_read_back_unchanged_or_refused_with_a_4xx(
    server: Server, client: httpx.Client, text: str,
) -> None:
    student = register_student(client)
    trainer = make_staff(server, client, Role.TRAINER)
    storable = UNSTORABLE.search(text) is None
    # A name or title is one line of visible text; other text may hold any storable one.
    one_line = storable and CONTROL.search(text) is None and not all(
        c.isspace() for c in text)

    def accepted(r: httpx.Response, ok: bool, status: int) -> bool:
        if ok:
            assert r.status_code == status, r.text
        else:
            assert 400 <= r.status_code < 500 and r.json()["status"] == "error", r.text
        return ok

    r = send(client, "PUT", "/api/users/profile/", {"name": text}, student.headers)
    if accepted(r, one_line, 200):
        name = r.json()["name"]
        assert _kept(text, name)
        assert _read_back(client, student, r, "/api/users/profile/")["name"] == name

    r = send(client, "POST", "/api/auth/register/", {
        "email": unique_email(), "password": PASSWORD, "name": text, "track": "FSD"})
    if accepted(r, one_line, 201):
        assert _kept(text, r.json()["user"]["name"])

    send(client, "POST", "/api/curriculum/progress/", {
        "project_id": "dp-01-sql-foundations", "action": "start"}, student.headers)
    r = send(client, "POST", "/api/curriculum/submissions/", {
        "project_id": "dp-01-sql-foundations", "note": text,
        "deliverables": {"findings_summary": text}}, student.headers)
    # (the domain counts a deliverable of only whitespace, in Python's sense, as empty)
    if accepted(r, storable and text.strip() != "", 201):
        body = _read_back(client, student, r, f"/api/curriculum/submissions/{r.json()['id']}/")
        assert _kept(text, body["deliverables"]["findings_summary"]["value"])

    r = send(client, "POST", "/api/quiz/quizzes/generate/", {
        "title": text, "prompt": "SQL joins", "num_questions": 1, "track": "DP"},
        trainer.headers)
    if accepted(r, one_line, 202):
        quiz = _read_back(client, trainer, r, f"/api/quiz/quizzes/{r.json()['id']}/")
        assert _kept(text, quiz["title"])


def test_the_property_draws_what_it_claims() -> None:
    # The strategy reaches NUL, surrogates and control characters, not only printable text.
    assert "\x00" in find(ANY_TEXT, lambda t: "\x00" in t)
    assert UNSTORABLE.search(find(ANY_TEXT, lambda t: any(
        "\ud800" <= c <= "\udfff" for c in t)))
    assert CONTROL.search(find(ANY_TEXT, lambda t: "\x1f" in t))
