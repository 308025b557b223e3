"""Every route in the OpenAPI document by every kind of caller → the status it answers.

The callers: nobody, a student, a second student of the same track, a student of the
other track, the student's trainer, another trainer, an admin, a superadmin, an auditor
and an analyst. Objects in paths belong to the first student (or, for quizzes, to the
student's trainer), so each row also says who may touch someone else's object. A route
missing from the table fails the test: no route ships without its row. The README's
permission matrix is this table.

Commands that change the shared world target objects made for the call (a fresh draft
quiz, a fresh account), and a 409 for an allowed caller means the object had already
moved on (reviewed, published) when its turn came: allowed, not refused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from domain.roles import Role
from tests.conftest import (
    PASSWORD,
    Server,
    User,
    login,
    make_staff,
    register_student,
    unique_email,
)
from tests.integration.test_quizzes_api import generate, publish

CALLERS = ("anonymous", "student", "peer", "other_track", "trainer", "other_trainer",
           "admin", "superadmin", "auditor", "analyst")
P1 = "dp-01-sql-foundations"
REPO = "https://github.com/ada/sql-foundations"


@dataclass
class World:
    server: Server
    client: httpx.Client
    users: dict[str, User | None]
    quiz: dict[str, Any]
    attempt: dict[str, Any]
    submission: dict[str, Any]

    @property
    def student(self) -> User:
        user = self.users["student"]
        assert user is not None
        return user

    @property
    def trainer(self) -> User:
        user = self.users["trainer"]
        assert user is not None
        return user

    def draft(self) -> str:
        return str(generate(self.client, self.trainer, 2)["id"])

    def account(self) -> str:
        root = self.users["superadmin"]
        assert root is not None
        r = self.client.post("/api/users/", headers=root.headers, json={
            "email": unique_email("target"), "password": PASSWORD, "name": "Target",
            "role": "trainer"})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


@dataclass(frozen=True)
class Call:
    """How to make the request; `path` gets the world and the caller's name."""

    path: Callable[[World, str], str]
    body: Callable[[World, str], Any] = lambda w, who: None
    session: str = "own"  # "fresh": the caller logs in again first (logout ends a session)
    upload: bool = False  # a multipart file instead of a JSON body


def fixed(path: str, body: Any = None) -> Call:
    return Call(lambda w, who: path, lambda w, who: body)


def _own(w: World, who: str) -> User | None:
    return w.users[who]


CALLS: dict[str, Call] = {
    "POST /api/quiz/quizzes/generate/": fixed("/api/quiz/quizzes/generate/", {
        "title": "Joins", "prompt": "SQL joins", "num_questions": 1, "track": "DP"}),
    "GET /api/quiz/quizzes/": fixed("/api/quiz/quizzes/"),
    "GET /api/quiz/quizzes/{quiz_id}/": Call(lambda w, who: f"/api/quiz/quizzes/{w.quiz['id']}/"),
    "PUT /api/quiz/quizzes/{quiz_id}/": Call(lambda w, who: f"/api/quiz/quizzes/{w.draft()}/",
                                             lambda w, who: {"title": "Renamed"}),
    "DELETE /api/quiz/quizzes/{quiz_id}/": Call(
        lambda w, who: f"/api/quiz/quizzes/{w.draft()}/"),
    "POST /api/quiz/quizzes/{quiz_id}/publish/": Call(
        lambda w, who: f"/api/quiz/quizzes/{w.draft()}/publish/"),
    "GET /api/quiz/quizzes/{quiz_id}/statistics/": Call(
        lambda w, who: f"/api/quiz/quizzes/{w.quiz['id']}/statistics/"),
    "POST /api/quiz/quizzes/{quiz_id}/regrade/": Call(
        lambda w, who: f"/api/quiz/quizzes/{w.quiz['id']}/regrade/",
        lambda w, who: {"dry_run": True}),
    "POST /api/quiz/quizzes/{quiz_id}/start/": Call(
        lambda w, who: f"/api/quiz/quizzes/{w.quiz['id']}/start/"),
    "POST /api/quiz/attempts/{attempt_id}/answer/": Call(
        lambda w, who: f"/api/quiz/attempts/{w.attempt['id']}/answer/",
        lambda w, who: {"question_id": w.attempt["questions"][0]["id"],
                        "option_ids": [w.attempt["questions"][0]["options"][0]["id"]]}),
    "GET /api/quiz/attempts/{attempt_id}/": Call(
        lambda w, who: f"/api/quiz/attempts/{w.attempt['id']}/"),
    "POST /api/quiz/attempts/{attempt_id}/submit/": Call(
        lambda w, who: f"/api/quiz/attempts/{w.attempt['id']}/submit/"),
    "GET /api/quiz/attempts/": fixed("/api/quiz/attempts/"),
    "GET /api/quiz/quizzes/{quiz_id}/grade/": Call(
        lambda w, who: f"/api/quiz/quizzes/{w.quiz['id']}/grade/"),
    "GET /api/curriculum/tracks/": fixed("/api/curriculum/tracks/"),
    "GET /api/curriculum/tracks/{code}/": fixed("/api/curriculum/tracks/DP/"),
    "GET /api/curriculum/projects/": fixed("/api/curriculum/projects/"),
    "GET /api/curriculum/projects/{project_id}/": fixed(f"/api/curriculum/projects/{P1}/"),
    "GET /api/curriculum/projects/{project_id}/steps/": fixed(
        f"/api/curriculum/projects/{P1}/steps/"),
    "GET /api/curriculum/progress/me/": fixed("/api/curriculum/progress/me/"),
    "POST /api/curriculum/progress/": fixed("/api/curriculum/progress/", {
        "project_id": P1, "action": "start"}),
    "POST /api/curriculum/submissions/": fixed("/api/curriculum/submissions/", {
        "project_id": P1, "deliverables": {"repository": REPO}}),
    "GET /api/curriculum/submissions/": fixed("/api/curriculum/submissions/"),
    "GET /api/curriculum/submissions/{submission_id}/": Call(
        lambda w, who: f"/api/curriculum/submissions/{w.submission['id']}/"),
    "PUT /api/curriculum/submissions/{submission_id}/": Call(
        lambda w, who: f"/api/curriculum/submissions/{w.submission['id']}/",
        lambda w, who: {"note": "edited"}),
    "POST /api/curriculum/submissions/{submission_id}/deliverables/{key}/file/": Call(
        lambda w, who: f"/api/curriculum/submissions/{w.submission['id']}"
                       "/deliverables/repository/file/", upload=True),
    "GET /api/curriculum/submissions/{submission_id}/deliverables/{key}/file/": Call(
        lambda w, who: f"/api/curriculum/submissions/{w.submission['id']}"
                       "/deliverables/repository/file/"),
    "POST /api/curriculum/submissions/{submission_id}/review/": Call(
        lambda w, who: f"/api/curriculum/submissions/{w.submission['id']}/review/",
        lambda w, who: {"decision": "start_review"}),
    "GET /api/curriculum/review-queue/": fixed("/api/curriculum/review-queue/"),
    "GET /api/users/profile/": fixed("/api/users/profile/"),
    "PUT /api/users/profile/": Call(lambda w, who: "/api/users/profile/",
                                    lambda w, who: {"name": who.title()}),
    "GET /api/users/trainers/": fixed("/api/users/trainers/"),
    "POST /api/users/assign-trainer/": Call(
        lambda w, who: "/api/users/assign-trainer/",
        lambda w, who: {"student_id": w.student.id, "trainer_id": w.trainer.id}),
    "GET /api/users/": fixed("/api/users/"),
    "POST /api/users/": Call(lambda w, who: "/api/users/", lambda w, who: {
        "email": unique_email("made"), "password": PASSWORD, "name": "Made",
        "role": "trainer"}),
    "GET /api/users/{user_id}/": Call(lambda w, who: f"/api/users/{w.student.id}/"),
    "PUT /api/users/{user_id}/": Call(lambda w, who: f"/api/users/{w.account()}/",
                                      lambda w, who: {"name": "Renamed"}),
    "DELETE /api/users/{user_id}/": Call(lambda w, who: f"/api/users/{w.account()}/"),
    "GET /api/users/profile/export/": fixed("/api/users/profile/export/"),
    "GET /api/users/{user_id}/export/": Call(
        lambda w, who: f"/api/users/{w.student.id}/export/"),
    "POST /api/users/{user_id}/erase/": Call(lambda w, who: f"/api/users/{w.account()}/erase/",
                                             lambda w, who: {"reason": "erasure request"}),
    "POST /api/auth/register/": Call(lambda w, who: "/api/auth/register/", lambda w, who: {
        "email": unique_email("new"), "password": PASSWORD, "name": "New", "track": "DP"}),
    "POST /api/auth/login/": Call(lambda w, who: "/api/auth/login/", lambda w, who: {
        "email": u.email if (u := _own(w, who)) else "nobody@example.com",
        "password": PASSWORD}),
    "POST /api/auth/token/refresh/": Call(
        lambda w, who: "/api/auth/token/refresh/",
        lambda w, who: {"refresh": u.refresh if (u := _own(w, who)) else "x.y.z"},
        session="fresh"),
    "POST /api/auth/logout/": Call(lambda w, who: "/api/auth/logout/", session="fresh"),
    "POST /api/auth/password/reset/": Call(
        lambda w, who: "/api/auth/password/reset/",
        lambda w, who: {"email": u.email if (u := _own(w, who)) else "nobody@example.com"}),
    "POST /api/auth/password/reset/confirm/": fixed("/api/auth/password/reset/confirm/", {
        "token": "not-a-key", "new_password": "another fine password"}),
    "GET /api/auth/verify-email/{key}/": fixed("/api/auth/verify-email/not-a-key/"),
    # Enrolling is every account's own business; the made-up code and challenge are wrong.
    "GET /api/auth/mfa/": fixed("/api/auth/mfa/"),
    "POST /api/auth/mfa/enrol/": fixed("/api/auth/mfa/enrol/"),
    "POST /api/auth/mfa/enrol/confirm/": fixed("/api/auth/mfa/enrol/confirm/",
                                               {"code": "000000"}),
    "POST /api/auth/mfa/verify/": fixed("/api/auth/mfa/verify/",
                                        {"challenge": "not-a-challenge", "code": "000000"}),
    "POST /api/auth/mfa/disable/": fixed("/api/auth/mfa/disable/", {"code": "000000"}),
    # No provider is configured on this server: sign-in routes say so; nothing is linked.
    "GET /api/auth/oauth/": fixed("/api/auth/oauth/"),
    "GET /api/auth/oauth/identities/": fixed("/api/auth/oauth/identities/"),
    "GET /api/auth/oauth/{provider}/login/": fixed("/api/auth/oauth/google/login/"),
    "GET /api/auth/oauth/{provider}/callback/": fixed(
        "/api/auth/oauth/google/callback/?state=s&code=c"),
    "POST /api/auth/oauth/complete/": fixed("/api/auth/oauth/complete/",
                                            {"ticket": "not-a-ticket"}),
    "DELETE /api/auth/oauth/identities/{provider}/": fixed("/api/auth/oauth/identities/github/"),
    "POST /api/users/workspace/create/": fixed("/api/users/workspace/create/"),
    "GET /api/users/workspace/status/": fixed("/api/users/workspace/status/"),
    "GET /api/users/workspace/url/": fixed("/api/users/workspace/url/"),
    "DELETE /api/users/workspace/stop/": fixed("/api/users/workspace/stop/"),
    "GET /api/users/workspace/progress/": fixed(
        "/api/users/workspace/progress/?timeout=1"),
    "GET /api/workspaces/": fixed("/api/workspaces/"),
    "POST /api/workspaces/{student_id}/stop/": Call(
        lambda w, who: f"/api/workspaces/{w.student.id}/stop/"),
    "POST /api/payments/create-intent/": fixed("/api/payments/create-intent/"),
    "GET /api/payments/": fixed("/api/payments/"),
    "POST /api/payments/webhook/": fixed("/api/payments/webhook/", {}),
    "GET /api/payments/{payment_id}/": fixed(f"/api/payments/{uuid.UUID(int=7)}/"),
    "POST /api/payments/{payment_id}/refund-request/": fixed(
        f"/api/payments/{uuid.UUID(int=7)}/refund-request/", {"reason": "Changed my mind"}),
    "POST /api/payments/{payment_id}/refund/": fixed(
        f"/api/payments/{uuid.UUID(int=7)}/refund/", {"approve": False}),
    "GET /api/users/github/connect/": fixed("/api/users/github/connect/"),
    "GET /api/users/github/callback/": fixed("/api/users/github/callback/?code=c&state=s"),
    "POST /api/github/webhook/": fixed("/api/github/webhook/", {}),
    "GET /api/events/": fixed("/api/events/?limit=1"),
    "GET /api/events/asyncapi.json": fixed("/api/events/asyncapi.json"),
    "GET /api/events/xapi/": fixed("/api/events/xapi/?limit=1"),
    "GET /api/audit/{aggregate_type}/{aggregate_id}/history/": Call(
        lambda w, who: f"/api/audit/account/{w.student.id}/history/"),
    "GET /api/audit/{aggregate_type}/{aggregate_id}/": Call(
        lambda w, who: f"/api/audit/account/{w.student.id}/"),
    "GET /livez": fixed("/livez"),
    "GET /readyz": fixed("/readyz"),
}


EXPECTED: dict[str, tuple[int, ...]] = {
    # route: anonymous, student, peer, other_track, trainer, other_trainer, admin,
    #        superadmin, auditor, analyst
    'POST /api/quiz/quizzes/generate/': (401, 403, 403, 403, 202, 202, 202, 202, 403, 403),
    'GET /api/quiz/quizzes/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/quiz/quizzes/{quiz_id}/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'PUT /api/quiz/quizzes/{quiz_id}/': (401, 404, 404, 404, 200, 403, 200, 200, 403, 403),
    'DELETE /api/quiz/quizzes/{quiz_id}/': (401, 404, 404, 404, 204, 403, 204, 204, 403, 403),
    'POST /api/quiz/quizzes/{quiz_id}/publish/':
        (401, 404, 404, 404, 200, 403, 200, 200, 403, 403),
    'GET /api/quiz/quizzes/{quiz_id}/statistics/':
        (401, 404, 404, 404, 200, 404, 200, 200, 200, 404),
    'POST /api/quiz/quizzes/{quiz_id}/regrade/':
        (401, 404, 404, 404, 200, 403, 200, 200, 403, 403),
    'POST /api/quiz/quizzes/{quiz_id}/start/':
        (401, 200, 201, 201, 201, 201, 201, 201, 403, 403),
    'POST /api/quiz/attempts/{attempt_id}/answer/':
        (401, 200, 404, 404, 404, 404, 404, 404, 403, 403),
    'GET /api/quiz/attempts/{attempt_id}/': (401, 200, 404, 404, 404, 404, 404, 404, 404, 404),
    'POST /api/quiz/attempts/{attempt_id}/submit/':
        (401, 200, 404, 404, 404, 404, 404, 404, 403, 403),
    'GET /api/quiz/attempts/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/quiz/quizzes/{quiz_id}/grade/':
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/tracks/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/tracks/{code}/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/projects/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/projects/{project_id}/':
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/projects/{project_id}/steps/':
        (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/progress/me/': (401, 200, 200, 200, 403, 403, 403, 403, 403, 403),
    'POST /api/curriculum/progress/': (401, 200, 200, 422, 403, 403, 403, 403, 403, 403),
    'POST /api/curriculum/submissions/': (401, 409, 201, 409, 403, 403, 403, 403, 403, 403),
    'GET /api/curriculum/submissions/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/curriculum/submissions/{submission_id}/':
        (401, 200, 404, 404, 200, 404, 200, 200, 200, 404),
    'PUT /api/curriculum/submissions/{submission_id}/':
        (401, 200, 404, 404, 404, 404, 404, 404, 403, 403),
    'POST /api/curriculum/submissions/{submission_id}/deliverables/{key}/file/':
        (401, 409, 404, 404, 404, 404, 404, 404, 403, 403),
    'GET /api/curriculum/submissions/{submission_id}/deliverables/{key}/file/':
        (401, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    'POST /api/curriculum/submissions/{submission_id}/review/':
        (401, 403, 403, 403, 200, 404, 200, 200, 403, 403),
    'GET /api/curriculum/review-queue/': (401, 403, 403, 403, 200, 200, 200, 200, 200, 403),
    'GET /api/users/profile/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'PUT /api/users/profile/': (401, 200, 200, 200, 200, 200, 200, 200, 403, 403),
    'GET /api/users/trainers/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'POST /api/users/assign-trainer/': (401, 403, 403, 403, 403, 403, 200, 200, 403, 403),
    'GET /api/users/': (401, 403, 403, 403, 403, 403, 200, 200, 200, 403),
    'POST /api/users/': (401, 403, 403, 403, 403, 403, 201, 201, 403, 403),
    'GET /api/users/{user_id}/': (401, 200, 404, 404, 200, 404, 200, 200, 200, 404),
    'PUT /api/users/{user_id}/': (401, 403, 403, 403, 403, 403, 200, 200, 403, 403),
    'DELETE /api/users/{user_id}/': (401, 403, 403, 403, 403, 403, 403, 204, 403, 403),
    'GET /api/users/profile/export/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/users/{user_id}/export/': (401, 403, 403, 403, 403, 403, 200, 200, 403, 403),
    'POST /api/users/{user_id}/erase/': (401, 403, 403, 403, 403, 403, 403, 200, 403, 403),
    'POST /api/auth/register/': (201, 201, 201, 201, 201, 201, 201, 201, 201, 201),
    'POST /api/auth/login/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'POST /api/auth/token/refresh/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'POST /api/auth/logout/': (401, 204, 204, 204, 204, 204, 204, 204, 204, 204),
    'POST /api/auth/password/reset/': (202, 202, 202, 202, 202, 202, 202, 202, 202, 202),
    'POST /api/auth/password/reset/confirm/':
        (410, 410, 410, 410, 410, 410, 410, 410, 410, 410),
    'GET /api/auth/verify-email/{key}/': (410, 410, 410, 410, 410, 410, 410, 410, 410, 410),
    'GET /api/auth/mfa/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'POST /api/auth/mfa/enrol/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'POST /api/auth/mfa/enrol/confirm/': (401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
    'POST /api/auth/mfa/verify/': (401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
    'POST /api/auth/mfa/disable/': (401, 409, 409, 409, 409, 409, 409, 409, 409, 409),
    'GET /api/auth/oauth/': (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/auth/oauth/identities/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/auth/oauth/{provider}/login/':
        (404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    'GET /api/auth/oauth/{provider}/callback/':
        (404, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    'POST /api/auth/oauth/complete/': (410, 410, 410, 410, 410, 410, 410, 410, 410, 410),
    'DELETE /api/auth/oauth/identities/{provider}/':
        (401, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    'POST /api/users/workspace/create/': (401, 202, 202, 202, 403, 403, 403, 403, 403, 403),
    'GET /api/users/workspace/status/': (401, 200, 200, 200, 404, 404, 404, 404, 404, 404),
    'GET /api/users/workspace/url/': (401, 409, 409, 409, 404, 404, 404, 404, 404, 404),
    'DELETE /api/users/workspace/stop/': (401, 202, 202, 202, 404, 404, 404, 404, 403, 403),
    'GET /api/users/workspace/progress/': (401, 200, 200, 200, 404, 404, 404, 404, 404, 404),
    'GET /api/workspaces/': (401, 403, 403, 403, 403, 403, 200, 200, 200, 403),
    'POST /api/workspaces/{student_id}/stop/':
        (401, 403, 403, 403, 403, 403, 202, 202, 403, 403),
    'POST /api/payments/create-intent/': (401, 409, 409, 409, 403, 403, 403, 403, 403, 403),
    'GET /api/payments/': (401, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'POST /api/payments/webhook/': (409, 409, 409, 409, 409, 409, 409, 409, 409, 409),
    'GET /api/payments/{payment_id}/': (401, 404, 404, 404, 404, 404, 404, 404, 404, 404),
    'POST /api/payments/{payment_id}/refund-request/':
        (401, 404, 404, 404, 404, 404, 404, 404, 403, 403),
    'POST /api/payments/{payment_id}/refund/':
        (401, 403, 403, 403, 403, 403, 404, 404, 403, 403),
    'GET /api/users/github/connect/': (401, 409, 409, 409, 409, 409, 409, 409, 409, 409),
    'GET /api/users/github/callback/': (401, 401, 401, 401, 401, 401, 401, 401, 401, 401),
    'POST /api/github/webhook/': (409, 409, 409, 409, 409, 409, 409, 409, 409, 409),
    'GET /api/events/': (401, 403, 403, 403, 403, 403, 200, 200, 200, 200),
    'GET /api/events/asyncapi.json': (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /api/events/xapi/': (401, 403, 403, 403, 403, 403, 200, 200, 200, 200),
    'GET /api/audit/{aggregate_type}/{aggregate_id}/history/':
        (401, 403, 403, 403, 403, 403, 200, 200, 200, 403),
    'GET /api/audit/{aggregate_type}/{aggregate_id}/':
        (401, 403, 403, 403, 403, 403, 200, 200, 200, 403),
    'GET /livez': (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
    'GET /readyz': (200, 200, 200, 200, 200, 200, 200, 200, 200, 200),
}


def observe(w: World, route: str, who: str) -> int:
    call = CALLS[route]
    method = route.split(" ", 1)[0]
    user = w.users[who]
    if user is not None and call.session == "fresh":
        user = login(w.client, user.email)
        w.users[who] = user if route.endswith("/refresh/") else w.users[who]
    headers = user.headers if user is not None else {}
    body = call.body(w, who)
    if call.upload:
        r = w.client.request(method, call.path(w, who), headers=headers,
                             files={"file": ("notes.txt", b"notes", "text/plain")})
    else:
        r = w.client.request(method, call.path(w, who), headers=headers,
                             json=body if body is not None or method != "GET" else None)
    assert r.status_code < 500, (route, who, r.text)
    if r.status_code >= 400:
        assert r.json()["status"] == "error", (route, who, r.text)
    return r.status_code


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    client = server.client()
    trainer = make_staff(server, client, Role.TRAINER)
    users: dict[str, User | None] = {
        "anonymous": None,
        "student": register_student(client, "DP"),
        "peer": register_student(client, "DP"),
        "other_track": register_student(client, "FSD"),
        "trainer": trainer,
        "other_trainer": make_staff(server, client, Role.TRAINER),
        "admin": make_staff(server, client, Role.ADMIN),
        "superadmin": make_staff(server, client, Role.SUPERADMIN),
        "auditor": make_staff(server, client, Role.AUDITOR),
        "analyst": make_staff(server, client, Role.ANALYST),
    }
    admin = users["admin"]
    student = users["student"]
    assert admin is not None and student is not None
    r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                    json={"student_id": student.id, "trainer_id": trainer.id})
    assert r.status_code == 200, r.text
    quiz = publish(client, trainer, generate(client, trainer, 2))
    attempt = client.post(f"/api/quiz/quizzes/{quiz['id']}/start/", headers=student.headers)
    assert attempt.status_code == 201, attempt.text
    r = client.post("/api/curriculum/progress/", headers=student.headers,
                    json={"project_id": P1, "action": "start"})
    assert r.status_code == 200, r.text
    submission = client.post("/api/curriculum/submissions/", headers=student.headers, json={
        "project_id": P1, "submit": True, "note": "ready",
        "deliverables": {"repository": REPO, "findings_summary": "Revenue peaks in Q4."}})
    assert submission.status_code == 201, submission.text
    return World(server, client, users, quiz, attempt.json(), submission.json())


def test_every_route_is_in_the_table(server: Server) -> None:
    with server.client() as client:
        spec = client.get("/openapi.json").json()
    routes = {f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops}
    assert routes - set(CALLS) == set(), "routes without a row"
    assert set(CALLS) - routes == set(), "rows for routes that do not exist"
    assert set(EXPECTED) == set(CALLS)


def test_every_route_answers_every_caller_as_the_table_says(world: World) -> None:
    wrong = {}
    for route, expected in EXPECTED.items():
        got = tuple(observe(world, route, who) for who in CALLERS)
        if got != expected:
            wrong[route] = {who: (e, g) for who, e, g in zip(CALLERS, expected, got,
                                                             strict=True) if e != g}
    assert wrong == {}, wrong


def test_the_readme_states_this_table() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    stated = {}
    for line in readme.splitlines():
        if match := re.fullmatch(r"\| `([A-Z]+ [^`]+)` \| ([0-9 |]+) \|", line):
            stated[match[1]] = tuple(int(x) for x in match[2].split(" | "))
    assert stated == EXPECTED
