"""Idempotency-Key: a retried command answers its first outcome and runs once."""

from __future__ import annotations

import time
import uuid

import httpx

from interfaces.http.idempotency import request_fingerprint
from tests.conftest import PASSWORD, Server, User, register_student, unique_email


def _create(client: httpx.Client, admin: User, key: str, email: str,
            name: str = "Tess") -> httpx.Response:
    return client.post("/api/users/", headers={**admin.headers, "Idempotency-Key": key},
                       json={"email": email, "password": PASSWORD, "name": name,
                             "role": "trainer"})


def _accounts_with(server: Server, email: str) -> int:
    head = server.container.store.recorder.max_notification_id() or 0
    deadline = time.monotonic() + 10
    while not server.container.users.has_reached(head):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with server.container.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM rm_users WHERE email = %s",
                           (email,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_retry_with_the_same_key_answers_the_first_outcome_and_runs_once(
        server: Server, client: httpx.Client, admin: User) -> None:
    key, email = str(uuid.uuid4()), unique_email("trainer")
    first = _create(client, admin, key, email)
    assert first.status_code == 201, first.text
    again = _create(client, admin, key, email)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["X-Position"] == first.headers["X-Position"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _accounts_with(server, email) == 1
    # Without a key the same request runs, and is refused as a duplicate.
    plain = client.post("/api/users/", headers=admin.headers, json={
        "email": email, "password": PASSWORD, "name": "Tess", "role": "trainer"})
    assert plain.status_code == 409


def test_an_error_outcome_is_repeated_too(client: httpx.Client, admin: User) -> None:
    key = str(uuid.uuid4())
    body = {"email": "not an email", "password": PASSWORD, "name": "X", "role": "trainer"}
    headers = {**admin.headers, "Idempotency-Key": key}
    first = client.post("/api/users/", headers=headers, json=body)
    assert first.status_code == 422
    again = client.post("/api/users/", headers=headers, json=body)
    assert (again.status_code, again.json()) == (422, first.json())


def test_the_same_key_with_another_body_is_refused(client: httpx.Client, admin: User,
                                                   server: Server) -> None:
    key = str(uuid.uuid4())
    assert _create(client, admin, key, unique_email("trainer")).status_code == 201
    other = unique_email("trainer")
    r = _create(client, admin, key, other)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert _accounts_with(server, other) == 0
    # Another path with the key is another request as well.
    r = client.put("/api/users/profile/", headers={**admin.headers, "Idempotency-Key": key},
                   json={"name": "Ada"})
    assert r.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_keys_belong_to_the_account_that_sent_them(client: httpx.Client) -> None:
    key = str(uuid.uuid4())
    a, b = register_student(client), register_student(client)
    ra = client.put("/api/users/profile/", headers={**a.headers, "Idempotency-Key": key},
                    json={"name": "Alice"})
    rb = client.put("/api/users/profile/", headers={**b.headers, "Idempotency-Key": key},
                    json={"name": "Alice"})
    assert ra.status_code == rb.status_code == 200
    assert ra.json()["id"] == a.id and rb.json()["id"] == b.id
    assert "Idempotent-Replayed" not in rb.headers
    # A forged or missing token never reaches a stored outcome.
    forged = client.put("/api/users/profile/", headers={
        "Authorization": "Bearer x.y.z", "Idempotency-Key": key}, json={"name": "Alice"})
    assert forged.status_code == 401


def test_a_key_still_running_answers_409_and_malformed_keys_400(
        server: Server, client: httpx.Client) -> None:
    student = register_student(client)
    key = str(uuid.uuid4())
    body = b'{"name": "Ada"}'
    server.container.idempotency.reserve(  # as a first request still running would
        student.id, key, request_fingerprint("PUT", "/api/users/profile/", b"", body))
    r = client.put("/api/users/profile/", content=body, headers={
        **student.headers, "Idempotency-Key": key, "Content-Type": "application/json"})
    assert r.status_code == 409 and r.headers["Retry-After"]
    assert r.json()["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    for bad in ("", "has space", "x" * 256, "caf\u00e9"):
        r = client.put("/api/users/profile/", json={"name": "Ada"}, headers={
            **student.headers, "Idempotency-Key": bad.encode()})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["status"] == "error"
