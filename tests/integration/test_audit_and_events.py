"""Auditors (history, time travel, rebuild/verify) and analysts (CloudEvents, SSE, xAPI)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from typer.testing import CliRunner

from domain.roles import Role
from interfaces.cli import app as cli
from interfaces.http.routers import events as events_router
from tests.conftest import (
    PASSWORD,
    Mailbox,
    Server,
    User,
    login,
    make_settings,
    make_staff,
    new_database,
    register_student,
    running_server,
    settings_env,
    unique_email,
)
from tests.integration.test_quizzes_api import correct_ids, generate, publish, wrong_ids


def staff(server: Server, client: httpx.Client, role: Role) -> User:
    return make_staff(server, client, role)


def test_auditor_reads_everything_and_changes_nothing(
    server: Server, client: httpx.Client, student: User,
) -> None:
    auditor = staff(server, client, Role.AUDITOR)
    assert client.get("/api/users/", headers=auditor.headers).status_code == 200
    assert client.get(f"/api/users/{student.id}/", headers=auditor.headers).status_code == 200
    assert client.get("/api/curriculum/submissions/", headers=auditor.headers).status_code == 200
    assert client.get("/api/curriculum/review-queue/", headers=auditor.headers).status_code == 200
    r = client.put(f"/api/users/{student.id}/", headers=auditor.headers, json={"name": "x"})
    assert r.status_code == 403
    r = client.post("/api/quiz/quizzes/generate/", headers=auditor.headers,
                    json={"title": "t", "prompt": "p", "num_questions": 1})
    assert r.status_code == 403
    for path in (f"/api/audit/account/{student.id}/history/", "/api/events/"):
        assert client.get(path, headers=student.headers).status_code == 403
    analyst = staff(server, client, Role.ANALYST)
    assert client.get("/api/events/", headers=analyst.headers).status_code == 200
    assert client.get(f"/api/audit/account/{student.id}/history/",
                      headers=analyst.headers).status_code == 403


def test_history_says_who_did_what_when_and_why(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    auditor = staff(server, client, Role.AUDITOR)
    user = register_student(client)
    client.put(f"/api/users/{user.id}/", headers=admin.headers,
               json={"role": "trainer", "reason": "hired as a trainer"})
    r = client.get(f"/api/audit/account/{user.id}/history/", headers=auditor.headers)
    assert r.status_code == 200
    entries = r.json()["results"]
    assert [e["event"] for e in entries] == ["Registered", "RoleChanged"]
    assert entries[0]["actor_id"] == user.id  # self-registration
    assert entries[1]["actor_id"] == admin.id and entries[1]["reason"] == "hired as a trainer"
    assert entries[1]["data"]["old_role"] == "student"
    assert "password" not in json.dumps(entries)
    for path, code in ((f"/api/audit/quiz/{user.id}/history/", 404),
                       (f"/api/audit/wizard/{user.id}/history/", 404),
                       (f"/api/audit/account/{user.id}/?version=9", 404),
                       (f"/api/audit/account/{user.id}/?version=0", 422),
                       (f"/api/audit/account/{user.id}/?at=yesterday", 422),
                       (f"/api/audit/account/{user.id}/?at=2026-01-01T00:00:00", 422),
                       (f"/api/audit/account/{user.id}/?version=1&at=2026-01-01T00:00:00Z",
                        422),
                       (f"/api/audit/account/{user.id}/?at=2000-01-01T00:00:00Z", 404)):
        r = client.get(path, headers=auditor.headers)
        assert r.status_code == code, (path, r.text)
        assert r.json()["status"] == "error"
    then = client.get(f"/api/audit/account/{user.id}/?version=1", headers=auditor.headers)
    assert then.json()["state"]["role"] == "student"
    now = client.get(f"/api/audit/account/{user.id}/", headers=auditor.headers)
    assert now.json()["state"]["role"] == "trainer" and now.json()["version"] == 2


def test_what_was_the_grade_then_and_who_changed_it_since(
    server: Server, client: httpx.Client,
) -> None:
    trainer, auditor = staff(server, client, Role.TRAINER), staff(server, client, Role.AUDITOR)
    student = register_student(client)
    quiz = publish(client, trainer, generate(client, trainer, 2), show_answers="immediately")
    attempt = client.post(f"/api/quiz/quizzes/{quiz['id']}/start/",
                          headers=student.headers).json()
    q0 = quiz["questions"][0]
    chosen = wrong_ids(q0)
    client.post(f"/api/quiz/attempts/{attempt['id']}/answer/", headers=student.headers,
                json={"question_id": q0["id"], "option_ids": chosen})
    client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=student.headers)
    time.sleep(0.05)
    last_tuesday = datetime.now(UTC).isoformat()
    time.sleep(0.05)
    fixed = json.loads(json.dumps(quiz["questions"]))
    fixed[0]["type"] = "SINGLE"
    for o in fixed[0]["options"]:
        o["correct"] = o["id"] in chosen
    client.put(f"/api/quiz/quizzes/{quiz['id']}/", headers=trainer.headers,
               json={"questions": fixed, "reason": "wrong key"})
    client.post(f"/api/quiz/quizzes/{quiz['id']}/regrade/", headers=trainer.headers,
                json={"dry_run": False, "reason": "wrong key"})
    then = client.get(f"/api/audit/attempt/{attempt['id']}/", headers=auditor.headers,
                      params={"at": last_tuesday}).json()
    now = client.get(f"/api/audit/attempt/{attempt['id']}/", headers=auditor.headers).json()
    assert then["state"]["score"] == 0.0 and now["state"]["score"] == 1.0
    history = client.get(f"/api/audit/attempt/{attempt['id']}/history/",
                         headers=auditor.headers).json()["results"]
    changes = [e for e in history if e["at"] > last_tuesday]
    assert [(e["event"], e["actor_id"], e["reason"]) for e in changes] == [
        ("Regraded", trainer.id, "wrong key")]


def _all_events(client: httpx.Client, reader: User, limit: int) -> list[dict[str, Any]]:
    collected, after = [], 0
    while True:
        page = client.get("/api/events/", headers=reader.headers,
                          params={"after": after, "limit": limit}).json()
        if not page["results"]:
            return collected
        collected += page["results"]
        after = page["last"]


def test_stream_pages_without_loss_or_duplication_and_pseudonymises(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    analyst = staff(server, client, Role.ANALYST)
    email = unique_email("private")
    r = client.post("/api/auth/register/", json={"email": email, "password": PASSWORD,
                                                 "name": "Zyxwvut Qwertyson", "track": "DP"})
    person = login(client, email)
    client.put("/api/users/profile/", headers=person.headers, json={"name": "Zyxwvut Q"})
    events = _all_events(client, analyst, limit=7)
    sequences = [int(e["sequence"]) for e in events]
    assert sequences == sorted(set(sequences))
    stored = server.container.store.recorder.select_notifications(start=1, limit=10**6)
    assert sequences == [n.id for n in stored][:len(sequences)]
    assert sequences[-1] >= int(r.headers["X-Position"])
    text = json.dumps(events)
    for secret in (email, "Zyxwvut", person.id, person.access, person.refresh, PASSWORD,
                   "password_hash", "$argon2"):
        assert secret not in text
    mine = [e for e in events if e["type"].startswith("apranova.account.")
            and e["data"].get("actor_id") and e["subject"] == e["data"]["actor_id"]]
    assert len({e["subject"] for e in mine if e["type"].endswith("ProfileUpdated")}) >= 1
    pseudonyms = {e["subject"] for e in events if e["type"] == "apranova.account.Registered"}
    again = {e["subject"] for e in _all_events(client, analyst, limit=500)
             if e["type"] == "apranova.account.Registered"}
    assert pseudonyms <= again  # stable across reads
    first = events[0]
    assert first["specversion"] == "1.0" and first["datacontenttype"] == "application/json"
    assert set(first) >= {"id", "source", "type", "time", "subject", "sequence", "data"}
    only = client.get("/api/events/", headers=analyst.headers, params={
        "types": "apranova.account.ProfileUpdated", "limit": 1000}).json()["results"]
    assert only and {e["type"] for e in only} == {"apranova.account.ProfileUpdated"}
    for params in ({"after": -1}, {"limit": 0}, {"limit": 5000}):
        assert client.get("/api/events/", headers=analyst.headers,
                          params=params).status_code == 422


def test_live_tail_resumes_after_last_event_id(
    server: Server, client: httpx.Client,
) -> None:
    analyst = staff(server, client, Role.ANALYST)
    head = server.container.store.recorder.max_notification_id() or 0
    resume_from = max(head - 5, 0)
    received: list[dict[str, Any]] = []
    headers = {**analyst.headers, "Accept": "text/event-stream",
               "Last-Event-ID": str(resume_from)}
    with client.stream("GET", "/api/events/", headers=headers,
                       params={"max_seconds": 2}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        last_id = None
        for line in response.iter_lines():
            if line.startswith("id: "):
                last_id = int(line[4:])
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert int(event["sequence"]) == last_id
                received.append(event)
                if len(received) == 3:
                    register_student(client)  # arrives while we listen
    sequences = [int(e["sequence"]) for e in received]
    assert sequences[0] == resume_from + 1 and sequences == sorted(set(sequences))
    assert sequences[-1] > head  # the live part came through too
    expected = client.get("/api/events/", headers=analyst.headers,
                          params={"after": resume_from, "limit": len(received)}).json()
    assert [e["id"] for e in expected["results"]] == [e["id"] for e in received]


def test_a_live_tail_is_woken_by_the_append_not_by_polling(
    server: Server, client: httpx.Client, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Polling would take half a minute to see the new event; the append's NOTIFY does not.
    monkeypatch.setattr(events_router, "TAIL_POLL_SECONDS", 30.0)
    board = server.container.users.board
    assert board.listening
    analyst = staff(server, client, Role.ANALYST)
    head = server.container.store.recorder.max_notification_id() or 0
    headers = {**analyst.headers, "Accept": "text/event-stream", "Last-Event-ID": str(head)}
    registered = threading.Timer(0.5, lambda: register_student(client))
    registered.start()
    try:
        with client.stream("GET", "/api/events/", headers=headers,
                           params={"max_seconds": 10}) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    assert int(json.loads(line[6:])["sequence"]) > head
                    break
            else:
                raise AssertionError("the tail ended without the new event")
    finally:
        registered.join()


def test_asyncapi_describes_every_event_type(server: Server, client: httpx.Client,
                                             admin: User) -> None:
    doc = client.get("/api/events/asyncapi.json").json()
    assert doc["asyncapi"] == "3.0.0"
    names = {m["name"] for m in doc["components"]["messages"].values()}
    seen = {e["type"] for e in _all_events(client, admin, limit=1000)}
    assert seen <= names
    registered = doc["components"]["messages"]["apranova_account_Registered"]
    data = registered["payload"]["properties"]["data"]["properties"]
    assert "email" not in data and "name" not in data
    assert data["actor_id"]["description"] == "pseudonym"


def test_xapi_statements_for_attempts_are_stable(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    trainer, student = staff(server, client, Role.TRAINER), register_student(client)
    quiz = publish(client, trainer, generate(client, trainer, 2), show_answers="immediately")
    attempt = client.post(f"/api/quiz/quizzes/{quiz['id']}/start/",
                          headers=student.headers).json()
    for q in quiz["questions"]:
        client.post(f"/api/quiz/attempts/{attempt['id']}/answer/", headers=student.headers,
                    json={"question_id": q["id"], "option_ids": correct_ids(q)})
    client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=student.headers)

    def statements() -> list[dict[str, Any]]:
        body = client.get("/api/events/xapi/", headers=admin.headers,
                          params={"limit": 1000}).json()
        return [s for s in body["statements"] if s["context"]["registration"] == attempt["id"]]

    first = statements()
    assert [s["verb"]["display"]["en-US"] for s in first] == ["attempted", "completed"]
    completed = first[1]
    assert completed["result"]["score"]["scaled"] == 1.0
    assert completed["actor"]["account"]["name"].startswith("p-")
    assert student.id not in json.dumps(first)
    assert [s["id"] for s in statements()] == [s["id"] for s in first]
    cloud = {e["id"] for e in _all_events(client, admin, limit=1000)
             if e["type"] in ("apranova.attempt.Started", "apranova.attempt.Submitted")}
    assert {s["id"] for s in first} <= cloud


def test_rebuild_and_verify_after_a_mixed_workload(
    smtp: tuple[Mailbox, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    with new_database() as database_url:
        settings = make_settings(database_url, smtp[1], tmp_path)
        with running_server(settings) as s, s.client() as c:
            admin = make_staff(s, c, Role.ADMIN)
            trainer = make_staff(s, c, Role.TRAINER)
            students = [register_student(c) for _ in range(3)]
            for st in students:
                c.post("/api/users/assign-trainer/", headers=admin.headers,
                       json={"student_id": st.id, "trainer_id": trainer.id})
                c.post("/api/curriculum/progress/", headers=st.headers, json={
                    "project_id": "dp-01-sql-foundations", "action": "start"})
            c.post("/api/curriculum/submissions/", headers=students[0].headers, json={
                "project_id": "dp-01-sql-foundations", "submit": True, "deliverables": {
                    "repository": "https://github.com/a/b", "findings_summary": "done"}})
            quiz = publish(c, trainer, generate(c, trainer, 3), show_answers="immediately")
            for st in students[:2]:
                attempt = c.post(f"/api/quiz/quizzes/{quiz['id']}/start/",
                                 headers=st.headers).json()
                for q in quiz["questions"]:  # saves of one attempt merge in a replay
                    for pick in (wrong_ids(q), correct_ids(q)):
                        c.post(f"/api/quiz/attempts/{attempt['id']}/answer/",
                               headers=st.headers,
                               json={"question_id": q["id"], "option_ids": pick})
                c.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=st.headers)
            head = s.container.store.recorder.max_notification_id() or 0
            for view in s.container.views.values():
                view.wait_for(head, 10)

            settings_env(monkeypatch, settings)
            runner = CliRunner()
            result = runner.invoke(cli, ["projections", "verify"])
            assert result.exit_code == 0, result.output
            assert result.output.count("identical") == len(s.container.views)

            with s.container.pool.connection() as conn:
                conn.execute("UPDATE rm_users SET name = 'Tampered' WHERE id = %s",
                             (students[1].id,))
                conn.execute("DELETE FROM rm_attempts WHERE student_id = %s",
                             (students[0].id,))
            result = runner.invoke(cli, ["projections", "verify"])
            assert result.exit_code == 1
            assert "users.rm_users: 1 row(s) only in the live model, 1 only in the rebuild" \
                in result.output and "Tampered" in result.output
            assert "attempts.rm_attempts: 0 row(s) only in the live model, 1 only" \
                in result.output

            # Rebuild while the live projector keeps running and new events arrive.
            result = runner.invoke(cli, ["projections", "rebuild", "users"])
            assert result.exit_code == 0, result.output
            result = runner.invoke(cli, ["projections", "rebuild"])
            assert result.exit_code == 0, result.output
            newcomer = register_student(c)
            assert c.get("/api/users/profile/", headers=newcomer.headers).status_code == 200
            result = runner.invoke(cli, ["projections", "verify"])
            assert result.exit_code == 0, result.output
            r = c.get(f"/api/users/{students[1].id}/", headers=admin.headers)
            assert r.json()["name"] != "Tampered"
            assert runner.invoke(cli, ["projections", "verify", "nope"]).exit_code == 2

            out = tmp_path / "events.parquet"
            result = runner.invoke(cli, ["events", "export", "--format", "parquet", "-o",
                                         str(out)])
            assert result.exit_code == 0, result.output
            jsonl = tmp_path / "events.jsonl"
            runner.invoke(cli, ["events", "export", "--after", "5", "-o", str(jsonl)])
            total = s.container.store.recorder.max_notification_id() or 0
            counted = duckdb.sql(f"SELECT count(*), min(sequence) FROM '{out}'").fetchall()[0]
            assert counted == (total, 1)
            first_seq = duckdb.sql(
                f"SELECT min(CAST(sequence AS BIGINT)) FROM read_json_auto('{jsonl}')"
            ).fetchall()[0]
            assert first_seq == (6,)
            emails = {st.email for st in students}
            assert not any(e in jsonl.read_text() for e in emails)


def test_no_value_in_the_stream_carries_a_raw_person_id(
    server: Server, client: httpx.Client, admin: User,
) -> None:
    student = register_student(client)
    # A workspace is named after its student: the name must not give the id away.
    r = client.post("/api/users/workspace/create/", headers=student.headers)
    assert r.status_code in (200, 202), r.text
    after = int(r.headers["X-Position"]) - 5
    page = client.get("/api/events/", headers=admin.headers,
                      params={"after": after, "limit": 1000}).json()["results"]
    opened = [e for e in page if e["type"].startswith("apranova.workspace.")]
    assert opened and any("container_name" in e["data"] for e in opened)
    assert student.id not in json.dumps(page)
