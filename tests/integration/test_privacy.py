"""A person's data exported, then erased from the immutable log by destroying their key:
afterwards nothing in the database or the data directory holds their name, email or
GitHub login, the read models verify against a rebuild, and what happened is intact."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg import sql

from domain.accounts import Account
from domain.privacy import ERASED
from domain.roles import Role
from projections.models import PROJECTIONS
from projections.rebuild import verify
from tests.conftest import PASSWORD, Server, User, login, make_staff, running_server
from tests.integration.test_curriculum_api import P1, P2, progress, review
from tests.integration.test_quizzes_api import answer, correct_ids, generate, publish, start


def places_holding(server: Server, needles: list[str]) -> list[str]:
    """Every (table.column) of the database, and every file of the data directory,
    holding any of the needles: text and JSON case-insensitively, bytes (the log's
    payloads, stored responses, wrapped keys) as UTF-8."""
    found = []
    with server.container.pool.connection() as conn:
        columns = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')").fetchall()
        for table, column, kind in columns:
            match = (sql.SQL("position(convert_to(%(n)s, 'UTF8') IN {c}) > 0")
                     if kind == "bytea" else sql.SQL("{c}::text ILIKE %(like)s"))
            query = sql.SQL("SELECT count(*) FROM {t} WHERE ").format(t=sql.Identifier(table)) \
                + match.format(c=sql.Identifier(column))
            for needle in needles:
                row = conn.execute(query, {"n": needle, "like": f"%{needle}%"}).fetchone()
                if row and row[0]:
                    found.append(f"{table}.{column} holds {needle!r}")
    data_dir: Path = server.container.settings.data_dir
    for path in data_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            found += [f"{path} holds {n!r}" for n in needles if n.encode() in content]
    return found


def _person(client: httpx.Client, name: str, email: str) -> User:
    r = client.post("/api/auth/register/", json={
        "email": email, "password": PASSWORD, "name": name, "track": "DP"})
    assert r.status_code == 201, r.text
    return login(client, email)


def _feed(client: httpx.Client, who: User, after: int) -> list[dict[str, Any]]:
    """The analysts' stream after a position, to its end."""
    events: list[dict[str, Any]] = []
    while True:
        page = client.get("/api/events/", headers=who.headers,
                          params={"after": after, "limit": 1000}).json()
        events += page["results"]
        if not page["results"]:
            return events
        after = page["last"]


def _export(client: httpx.Client, who: User, path: str) -> dict[str, Any]:
    r = client.get(path, headers=who.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    document = r.json()
    assert isinstance(document, dict)
    return document


def test_export_then_erase_leaves_no_trace_and_keeps_what_happened(
    server: Server, client: httpx.Client, admin: User, superadmin: User,
) -> None:
    tag = uuid.uuid4().hex[:10]
    name, email, login_name = f"Zelda Quixote {tag}", f"zq-{tag}@example.com", f"zq-gh-{tag}"
    start_at = server.container.store.recorder.max_notification_id() or 0
    person = _person(client, name, email)
    trainer = make_staff(server, client, Role.TRAINER)
    assert client.post("/api/users/assign-trainer/", headers=admin.headers, json={
        "student_id": person.id, "trainer_id": trainer.id}).status_code == 200

    # A submission with text and a note, reviewed with feedback; a file on the next one.
    assert progress(client, person, "start", P1).status_code == 200
    repo = f"https://github.com/{login_name}/sql-foundations"
    r = client.post("/api/curriculum/submissions/", headers=person.headers, json={
        "project_id": P1, "submit": True, "note": f"Done, {name}",
        "deliverables": {"repository": repo,
                         "findings_summary": f"Revenue peaks in Q4, wrote {name}."}})
    assert r.status_code == 201, r.text
    first = r.json()["id"]
    r = review(client, trainer, first, "approve", f"Well done {name}")
    assert r.status_code == 200, r.text
    assert progress(client, person, "start", P2).status_code == 200
    second = client.post("/api/curriculum/submissions/", headers=person.headers, json={
        "project_id": P2, "deliverables": {"repository": repo}}).json()["id"]
    report = f"%PDF-1.4\n% report of {tag}\n%%EOF\n".encode()
    r = client.post(f"/api/curriculum/submissions/{second}/deliverables/data_quality_report/"
                    "file/", headers=person.headers,
                    files={"file": (f"{login_name}-report.pdf", report)})
    assert r.status_code == 200, r.text
    sha256 = r.json()["deliverables"]["data_quality_report"]["sha256"]

    # A quiz attempt, submitted.
    quiz = publish(client, trainer, generate(client, trainer, n=2))
    attempt = start(client, person, quiz["id"]).json()
    for question in quiz["questions"]:
        assert answer(client, person, attempt["id"], question["id"],
                      correct_ids(question)).status_code == 200
    r = client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=person.headers)
    assert r.status_code == 200, r.text
    score = r.json()["score"]

    # A GitHub link, as the OAuth callback leaves it (an event and a stored token).
    store, account_id = server.container.store, uuid.UUID(person.id)
    account = store.load(Account, account_id)
    account.link_github(login_name, actor_id=account_id)
    store.commit(account)
    server.container.github.vault.store(account_id, login_name, f"gho_{tag}")

    needles = [name, email, login_name]
    mine = _export(client, person, "/api/users/profile/export/")
    theirs = _export(client, admin, f"/api/users/{person.id}/export/")
    for document in (mine, theirs):
        text = json.dumps(document)
        assert all(n in text for n in needles), needles
        assert document["account"]["email"] == email
        assert [f["sha256"] for f in document["files"]] == [sha256]
        assert document["read_models"]["rm_users"][0]["name"] == name
    assert places_holding(server, needles)  # the search finds what is there

    stream_before = {e["id"]: e for e in _feed(client, superadmin, start_at)}
    # The stream names no one, before as after: the person is their pseudonym there.
    pseudonym = str(server.container.stream.pseudonymise(account_id))
    assert pseudonym in json.dumps(stream_before)
    assert not any(n in json.dumps(stream_before) for n in needles)
    assert not any(f"Well done {name}" in json.dumps(e) for e in stream_before.values())
    r = client.post(f"/api/users/{person.id}/erase/", headers=superadmin.headers,
                    json={"reason": "erasure request #1"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": person.id, "erased": True}
    position = r.headers["X-Position"]
    at = {**superadmin.headers, "X-Position": position}

    # Readers show the marker; what happened is unchanged.
    erased = store.load(Account, account_id)
    assert (erased.name, erased.email, erased.github_login) == (ERASED, ERASED, ERASED)
    user = client.get(f"/api/users/{person.id}/", headers=at).json()
    assert (user["name"], user["email"], user["is_active"]) == (ERASED, ERASED, False)
    history = client.get(f"/api/audit/account/{person.id}/history/", headers=at).json()
    assert [h["event"] for h in history["results"]][-1].endswith("Erased")
    assert not any(n in json.dumps(history) for n in needles)
    assert f'"{ERASED}"' in json.dumps(history)  # the events stay, their personal fields erased
    stream_after = {e["id"]: e for e in _feed(client, superadmin, start_at)}
    assert not any(n in json.dumps(stream_after) for n in needles)
    # The analysts' stream is unchanged by the erasure: the same events, pseudonyms, data.
    assert {k: stream_after[k] for k in stream_before} == stream_before
    search = client.get(f"/api/users/?search={tag}", headers=at).json()
    assert search["count"] == 0
    submission = client.get(f"/api/curriculum/submissions/{first}/", headers=at).json()
    assert submission["status"] == "approved" and submission["feedback"] == ERASED
    r = client.get(f"/api/quiz/attempts/?quiz_id={quiz['id']}",
                   headers={**trainer.headers, "X-Position": position})
    assert r.status_code == 200, r.text
    assert [(a["id"], a["score"]) for a in r.json()["results"]] == [(attempt["id"], score)]

    # Nobody signs in as them; their email is free again.
    r = client.post("/api/auth/login/", json={"email": email, "password": PASSWORD})
    assert r.status_code == 401
    assert server.container.files.path(sha256) is None

    assert places_holding(server, needles) == []
    for projection in PROJECTIONS:
        assert verify(store, server.container.env, server.container.views[projection],
                      projection) == [], projection.name
    again = _person(client, "Zelda Again", email)
    assert again.id != person.id


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "x" * 501},
                                  {"reason": "\x00"}, {"reason": ["a"]}])
def test_erasure_needs_a_reason(client: httpx.Client, superadmin: User, admin: User,
                                body: dict[str, Any]) -> None:
    r = client.post(f"/api/users/{admin.id}/erase/", headers=superadmin.headers, json=body)
    assert r.status_code == 422, r.text


def test_only_a_superadmin_erases_and_only_administrators_export_others(
    client: httpx.Client, admin: User, superadmin: User, student: User,
) -> None:
    r = client.post(f"/api/users/{student.id}/erase/", headers=admin.headers,
                    json={"reason": "no"})
    assert r.status_code == 403
    r = client.get(f"/api/users/{admin.id}/export/", headers=student.headers)
    assert r.status_code == 403
    r = client.post(f"/api/users/{superadmin.id}/erase/", headers=superadmin.headers,
                    json={"reason": "myself"})
    assert r.status_code == 409
    r = client.post(f"/api/users/{uuid.uuid4()}/erase/", headers=superadmin.headers,
                    json={"reason": "nobody"})
    assert r.status_code == 404


def test_another_api_process_stops_reading_an_erased_person_at_once(
    server: Server, client: httpx.Client, superadmin: User,
) -> None:
    tag = uuid.uuid4().hex[:10]
    person = _person(client, f"Otto Elsewhere {tag}", f"otto-{tag}@example.com")
    account_id = uuid.UUID(person.id)
    with running_server(server.container.settings, background=False) as other:
        def name_there() -> str:
            registered = other.container.store.events.get(account_id, lte=1)
            return str(next(iter(registered)).name)  # type: ignore[attr-defined]

        assert name_there() == f"Otto Elsewhere {tag}"  # its key is now cached there
        cached = other.container.store.load(Account, account_id)  # and the account itself
        assert cached.name == f"Otto Elsewhere {tag}"
        r = client.post(f"/api/users/{person.id}/erase/", headers=superadmin.headers,
                        json={"reason": "erasure request"})
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 5  # the key is trusted for 60 s when nothing is heard
        while name_there() != ERASED or other.container.store.load(
                Account, account_id).name != ERASED:
            assert time.monotonic() < deadline, "the other process still reads the name"
            time.sleep(0.05)
