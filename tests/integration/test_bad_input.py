"""Bad input at every endpoint gets a 4xx in the error envelope, and changes nothing."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import JWT_SECRET, PASSWORD, User, register_student, unique_email

ANY_ID = "00000000-0000-4000-8000-000000000001"

# (method, path, a valid-looking body or None, needs auth)
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None, bool]] = [
    ("POST", "/api/auth/register/",
     {"email": "a@example.com", "password": PASSWORD, "name": "A", "track": "DP"}, False),
    ("POST", "/api/auth/login/", {"email": "a@example.com", "password": PASSWORD}, False),
    ("POST", "/api/auth/token/refresh/", {"refresh": "x"}, False),
    ("POST", "/api/auth/logout/", {"refresh": "x"}, True),
    ("POST", "/api/auth/password/reset/", {"email": "a@example.com"}, False),
    ("POST", "/api/auth/password/reset/confirm/", {"token": "x", "new_password": PASSWORD},
     False),
    ("PUT", "/api/users/profile/", {"name": "N"}, True),
    ("POST", "/api/users/", {"email": "a@example.com", "password": PASSWORD, "name": "A",
                             "role": "trainer"}, True),
    ("PUT", f"/api/users/{ANY_ID}/", {"name": "N"}, True),
    ("POST", "/api/users/assign-trainer/", {"student_id": ANY_ID, "trainer_id": ANY_ID}, True),
    ("POST", "/api/curriculum/progress/", {"project_id": "dp-01-sql-foundations",
                                           "action": "start"}, True),
    ("POST", "/api/curriculum/submissions/", {"project_id": "dp-01-sql-foundations"}, True),
    ("PUT", f"/api/curriculum/submissions/{ANY_ID}/", {"submit": True}, True),
    ("POST", f"/api/curriculum/submissions/{ANY_ID}/review/", {"decision": "approve"}, True),
    ("POST", "/api/quiz/quizzes/generate/", {"title": "t", "prompt": "p", "num_questions": 2},
     True),
    ("POST", f"/api/quiz/attempts/{ANY_ID}/answer/", {"question_id": "qabc",
                                                      "option_ids": ["oabc"]}, True),
    ("PUT", f"/api/quiz/quizzes/{ANY_ID}/", {"title": "t"}, True),
]
BODY_ENDPOINTS = [e for e in ENDPOINTS if e[2]]
# Endpoints whose body fields are all optional (an admin's partial edit, logout's refresh).
REQUIRED_FIELD_ENDPOINTS = [
    e for e in BODY_ENDPOINTS if e[1] not in (
        "/api/auth/logout/", f"/api/users/{ANY_ID}/", f"/api/curriculum/submissions/{ANY_ID}/",
        f"/api/quiz/quizzes/{ANY_ID}/")]
AUTH_ENDPOINTS = [(m, p) for m, p, _, auth in ENDPOINTS if auth] + [
    ("GET", "/api/users/profile/"), ("GET", "/api/users/"), ("GET", f"/api/users/{ANY_ID}/"),
    ("GET", "/api/users/trainers/"), ("DELETE", f"/api/users/{ANY_ID}/"),
    ("GET", "/api/curriculum/tracks/"), ("GET", "/api/curriculum/tracks/DP/"),
    ("GET", "/api/curriculum/projects/"), ("GET", "/api/curriculum/progress/me/"),
    ("GET", "/api/curriculum/submissions/"), ("GET", f"/api/curriculum/submissions/{ANY_ID}/"),
    ("GET", "/api/curriculum/review-queue/"),
    ("POST", f"/api/curriculum/submissions/{ANY_ID}/deliverables/repository/file/"),
    ("GET", "/api/quiz/quizzes/"), ("GET", f"/api/quiz/quizzes/{ANY_ID}/"),
    ("DELETE", f"/api/quiz/quizzes/{ANY_ID}/"), ("POST", f"/api/quiz/quizzes/{ANY_ID}/start/"),
    ("POST", f"/api/quiz/quizzes/{ANY_ID}/publish/"),
    ("POST", f"/api/quiz/attempts/{ANY_ID}/submit/"), ("GET", f"/api/quiz/attempts/{ANY_ID}/"),
    ("GET", "/api/quiz/attempts/"), ("GET", f"/api/quiz/quizzes/{ANY_ID}/statistics/"),
    ("POST", f"/api/quiz/quizzes/{ANY_ID}/regrade/"),
]


def assert_envelope(r: httpx.Response, status: int | tuple[int, ...], code: str | None = None
                    ) -> None:
    expected = status if isinstance(status, tuple) else (status,)
    assert r.status_code in expected, (r.status_code, r.text)
    body = r.json()
    assert body["status"] == "error"
    assert set(body["error"]) == {"code", "message", "details"}
    if code:
        assert body["error"]["code"] == code, body


def ids(e: tuple[Any, ...]) -> str:
    return f"{e[0]} {e[1]}"


@pytest.mark.parametrize("endpoint", REQUIRED_FIELD_ENDPOINTS, ids=ids)
def test_missing_fields(client: httpx.Client, admin: User, endpoint: tuple[Any, ...]) -> None:
    method, path, body, _ = endpoint
    for field in body:
        partial = {k: v for k, v in body.items() if k != field}
        r = client.request(method, path, json=partial, headers=admin.headers)
        assert_envelope(r, 422, "VALIDATION_ERROR")
        assert _names(r.json()["error"]["details"], field)


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=ids)
def test_wrong_types(client: httpx.Client, admin: User, endpoint: tuple[Any, ...]) -> None:
    method, path, body, _ = endpoint
    for field in body:
        r = client.request(method, path, json={**body, field: {"nested": [1, 2]}},
                           headers=admin.headers)
        assert_envelope(r, 422, "VALIDATION_ERROR")
        assert _names(r.json()["error"]["details"], field)


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=ids)
def test_unknown_fields_are_rejected(
    client: httpx.Client, admin: User, endpoint: tuple[Any, ...],
) -> None:
    method, path, body, _ = endpoint
    r = client.request(method, path, json={**body, "is_superuser": True}, headers=admin.headers)
    assert_envelope(r, 422, "VALIDATION_ERROR")
    details = r.json()["error"]["details"]
    assert [v for k, v in details.items() if _names({k: v}, "is_superuser")] == [
        ["Unknown field"]]


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=ids)
def test_malformed_json_and_non_object_bodies(
    client: httpx.Client, admin: User, endpoint: tuple[Any, ...],
) -> None:
    method, path, _, _ = endpoint
    headers = {**admin.headers, "Content-Type": "application/json"}
    r = client.request(method, path, content=b'{"email": ', headers=headers)
    assert_envelope(r, 400, "MALFORMED_JSON")
    r = client.request(method, path, content=b"[1, 2, 3]", headers=headers)
    assert_envelope(r, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=ids)
def test_oversized_bodies(client: httpx.Client, admin: User, endpoint: tuple[Any, ...]) -> None:
    method, path, body, _ = endpoint
    huge = {**body, next(iter(body)): "x" * (2 * 1024 * 1024)}
    r = client.request(method, path, json=huge, headers=admin.headers)
    assert_envelope(r, 413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Any:
        for _ in range(40):
            yield b"x" * 65536

    r = client.request(method, path, content=chunks(), headers={
        **admin.headers, "Content-Type": "application/json"})
    assert_envelope(r, 413, "PAYLOAD_TOO_LARGE")


def test_overlong_strings_are_validation_errors(client: httpx.Client) -> None:
    r = client.post("/api/auth/register/", json={
        "email": unique_email(), "password": PASSWORD, "name": "n" * 151, "track": "DP"})
    assert_envelope(r, 422, "VALIDATION_ERROR")
    r = client.post("/api/auth/register/", json={
        "email": unique_email(), "password": "p" * 2000, "name": "n", "track": "DP"})
    assert_envelope(r, 422, "VALIDATION_ERROR")
    r = client.post("/api/auth/register/", json={
        "email": "not-an-email", "password": PASSWORD, "name": "n", "track": "DP"})
    assert_envelope(r, 422, "VALIDATION_ERROR")
    r = client.post("/api/auth/register/", json={
        "email": unique_email(), "password": PASSWORD, "name": "n", "track": "XYZ"})
    assert_envelope(r, 422, "VALIDATION_ERROR")
    r = client.post("/api/auth/register/", json={
        "email": unique_email(), "password": "short", "name": "n", "track": "DP"})
    assert_envelope(r, 422, "VALIDATION_ERROR")
    assert "password" in r.json()["error"]["details"]
    email = unique_email()
    r = client.post("/api/auth/register/", json={
        "email": email, "password": email, "name": "n", "track": "DP"})
    assert_envelope(r, 422, "WEAK_PASSWORD")


def _names(details: dict[str, Any], field: str) -> bool:
    """The error details name the field (a body with variants names it after the variant:
    `start.project_id`)."""
    return any(key == field or key.endswith(f".{field}") for key in details)


def _forge(payload: dict[str, Any], header: dict[str, Any]) -> str:
    def b64(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{b64(header)}.{b64(payload)}."


def bad_tokens(user: User) -> dict[str, str]:
    claims = jwt.decode(user.access, options={"verify_signature": False})
    now = int(time.time())
    return {
        "garbage": "not-a-token",
        "alg none": _forge({**claims, "role": "superadmin"}, {"alg": "none", "typ": "JWT"}),
        "expired": jwt.encode({**claims, "iat": now - 3600, "exp": now - 60}, JWT_SECRET,
                              algorithm="HS256"),
        "wrong key": jwt.encode(claims, "k" * 48, algorithm="HS256"),
        "tampered role": jwt.encode({**claims, "role": "superadmin"}, "k" * 48,
                                    algorithm="HS256"),
        "refresh as access": user.refresh,
        "wrong audience": jwt.encode({**claims, "aud": "other"}, JWT_SECRET, algorithm="HS256"),
    }


@pytest.mark.parametrize("endpoint", AUTH_ENDPOINTS, ids=ids)
def test_authenticated_endpoints_refuse_missing_and_bad_tokens(
    client: httpx.Client, admin: User, endpoint: tuple[str, str],
) -> None:
    method, path = endpoint
    r = client.request(method, path)
    assert_envelope(r, 401, "NOT_AUTHENTICATED")
    assert r.headers["WWW-Authenticate"] == "Bearer"
    for name, token in bad_tokens(admin).items():
        r = client.request(method, path, headers={"Authorization": f"Bearer {token}"})
        expected = "TOKEN_EXPIRED" if name == "expired" else "TOKEN_INVALID"
        assert_envelope(r, 401, expected)
    r = client.request(method, path, headers={"Authorization": f"Basic {admin.access}"})
    assert_envelope(r, 401)


def test_refresh_endpoint_refuses_access_and_forged_tokens(
    client: httpx.Client, student: User,
) -> None:
    for token in (student.access, _forge({"typ": "refresh"}, {"alg": "none"}), "x"):
        r = client.post("/api/auth/token/refresh/", json={"refresh": token})
        assert_envelope(r, 401, "TOKEN_INVALID")


def test_bad_query_parameters_and_headers(client: httpx.Client, admin: User) -> None:
    for params in ({"page": 0}, {"page": "x"}, {"page_size": 0}, {"role": "wizard"},
                   {"search": "s" * 200}):
        r = client.get("/api/users/", headers=admin.headers, params=params)
        assert_envelope(r, 422, "VALIDATION_ERROR")
    r = client.get("/api/users/profile/", headers={**admin.headers, "X-Position": "-1"})
    assert_envelope(r, 422, "VALIDATION_ERROR")
    r = client.get("/api/users/profile/", headers={**admin.headers, "X-Position": "abc"})
    assert_envelope(r, 422, "VALIDATION_ERROR")


def test_bad_input_to_the_reads_that_join_models(client: httpx.Client, admin: User) -> None:
    """The student quiz list, progress/me, statistics and attempts read several models in
    one query; what they are asked still goes through validation first."""
    student = register_student(client)
    for params in ({"status": "bogus"}, {"page": 0}, {"page_size": 101}):
        r = client.get("/api/quiz/quizzes/", headers=student.headers, params=params)
        assert_envelope(r, 422, "VALIDATION_ERROR")
    for path in ("/api/quiz/quizzes/", "/api/curriculum/progress/me/"):
        r = client.get(path, headers={**student.headers, "X-Position": "abc"})
        assert_envelope(r, 422, "VALIDATION_ERROR")
    # An id that is not a UUID names no resource.
    assert_envelope(client.get("/api/quiz/quizzes/not-a-uuid/statistics/",
                               headers=admin.headers), 404, "NOT_FOUND")
    assert_envelope(client.get(f"/api/quiz/quizzes/{ANY_ID}/statistics/",
                               headers=admin.headers), 404)
    assert_envelope(client.get(f"/api/quiz/attempts/{ANY_ID}/", headers=student.headers), 404)
    r = client.get("/api/curriculum/progress/me/", headers=admin.headers)
    assert_envelope(r, 403, "NOT_A_STUDENT")


def test_unknown_paths_and_methods_use_the_envelope(client: httpx.Client) -> None:
    assert_envelope(client.get("/api/nothing-here/"), 404, "NOT_FOUND")
    assert_envelope(client.delete("/api/auth/login/"), 405, "METHOD_NOT_ALLOWED")


def test_failed_requests_store_nothing(client: httpx.Client, admin: User) -> None:
    email = unique_email()
    for body in ({"email": email, "password": "short", "name": "n", "track": "DP"},
                 {"email": email, "password": PASSWORD, "name": "n", "track": "DP", "x": 1}):
        client.post("/api/auth/register/", json=body)
    r = client.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert_envelope(r, 401, "INVALID_CREDENTIALS")
    r = client.get("/api/users/", headers=admin.headers, params={"search": email})
    assert r.json()["count"] == 0
