"""One request id from the HTTP request to the email its event made a process manager send."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator

import httpx
import pytest

from infrastructure.logs import handler
from tests.conftest import PASSWORD, Mailbox, register_student, unique_email


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    installed = handler("json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(installed)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(installed)
        root.setLevel(level)


def _logged_with(lines: io.StringIO, request_id: str, logger: str) -> dict[str, object]:
    """The one line `logger` wrote for the request (the access line comes just after the
    answer has gone out)."""
    deadline = time.monotonic() + 5
    while True:
        logged = [json.loads(line) for line in lines.getvalue().splitlines()]
        found = [e for e in logged if e.get("request_id") == request_id
                 and e["logger"] == logger]
        if found:
            [line] = found
            return dict(line)
        assert time.monotonic() < deadline, logged
        time.sleep(0.02)


def test_a_request_id_follows_a_command_to_the_email_it_sent(
        client: httpx.Client, mailbox: Mailbox, lines: io.StringIO) -> None:
    email = unique_email()
    r = client.post("/api/auth/register/", headers={"X-Request-ID": "signup-42"}, json={
        "email": email, "password": PASSWORD, "name": "Grace", "track": "DP"})
    assert r.status_code == 201 and r.headers["X-Request-ID"] == "signup-42"
    mailbox.wait_for(email, "Welcome to ApraNova")
    deadline = time.monotonic() + 5
    while True:
        logged = [json.loads(line) for line in lines.getvalue().splitlines()]
        mine = [entry for entry in logged if entry.get("request_id") == "signup-42"]
        if any(e["message"].startswith("email sent") for e in mine):
            break
        assert time.monotonic() < deadline, logged
        time.sleep(0.05)
    access = _logged_with(lines, "signup-42", "apranova.access")
    assert access["route"] == "/api/auth/register/" and access["status"] == 201
    assert access["method"] == "POST" and access["duration_ms"] > 0
    assert {"time", "level"} <= set(access)


def test_the_access_line_names_the_principal_and_bad_ids_are_replaced(
        client: httpx.Client, lines: io.StringIO) -> None:
    r = client.get("/api/users/profile/", headers={"X-Request-ID": "no spaces allowed"})
    made = r.headers["X-Request-ID"]
    assert made != "no spaces allowed" and len(made) == 32
    access = _logged_with(lines, made, "apranova.access")
    assert access["route"] == "/api/users/profile/" and access["status"] == 401
    assert access["principal"] is None
    student = register_student(client)
    client.get("/api/users/profile/", headers={**student.headers, "X-Request-ID": "who-1"})
    access = _logged_with(lines, "who-1", "apranova.access")
    assert access["principal"] == student.id and access["status"] == 200
