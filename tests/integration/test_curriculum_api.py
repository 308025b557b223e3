"""Catalog, progress and the unlock rule, submissions, reviews, uploads and notifications."""

from __future__ import annotations

import copy
import threading
import tomllib
from typing import Any

import httpx
import pytest

from domain.roles import Role
from infrastructure.settings import CONTENT
from tests.conftest import (
    Mailbox,
    Receiver,
    Server,
    User,
    make_staff,
    register_student,
)

P1, P2 = "dp-01-sql-foundations", "dp-02-python-data-wrangling"
REPO = "https://github.com/ada/sql-foundations"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def catalog_project(client: httpx.Client, user: User, slug: str) -> dict[str, Any]:
    r = client.get(f"/api/curriculum/projects/{slug}/", headers=user.headers)
    assert r.status_code == 200, r.text
    return r.json()


def progress(client: httpx.Client, user: User, action: str, slug: str,
             step: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"project_id": slug, "action": action}
    if step is not None:
        body["step"] = step
    return client.post("/api/curriculum/progress/", headers=user.headers, json=body)


@pytest.fixture
def team(server: Server, client: httpx.Client, admin: User) -> dict[str, User]:
    """Two DP students, each with their own trainer."""
    people = {"s1": register_student(client), "s2": register_student(client),
              "t1": make_staff(server, client, Role.TRAINER),
              "t2": make_staff(server, client, Role.TRAINER)}
    for s, t in (("s1", "t1"), ("s2", "t2")):
        r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                        json={"student_id": people[s].id, "trainer_id": people[t].id})
        assert r.status_code == 200
    return people


def submit_p1(client: httpx.Client, student: User) -> dict[str, Any]:
    assert progress(client, student, "start", P1).status_code == 200
    r = client.post("/api/curriculum/submissions/", headers=student.headers, json={
        "project_id": P1, "submit": True, "note": "ready",
        "deliverables": {"repository": REPO, "findings_summary": "Revenue peaks in Q4."}})
    assert r.status_code == 201, r.text
    return r.json()


def review(client: httpx.Client, who: User, submission_id: str, decision: str,
           feedback: str = "", rubric: dict[str, int] | None = None) -> httpx.Response:
    return client.post(f"/api/curriculum/submissions/{submission_id}/review/",
                       headers=who.headers,
                       json={"decision": decision, "feedback": feedback, "rubric": rubric or {}})


def test_both_tracks_ship_ten_projects_with_steps_and_deliverables(
    client: httpx.Client, student: User,
) -> None:
    tracks = client.get("/api/curriculum/tracks/", headers=student.headers).json()
    assert {t["code"]: t["project_count"] for t in tracks} == {"DP": 10, "FSD": 10}
    for code in ("DP", "FSD"):
        detail = client.get(f"/api/curriculum/tracks/{code}/", headers=student.headers).json()
        assert [p["number"] for p in detail["projects"]] == list(range(1, 11))
        kinds = {d["type"] for p in detail["projects"] for d in p["deliverables"]}
        assert kinds == {"LINK", "GITHUB", "FILE", "TEXT"}
        assert {p["type"] for p in detail["projects"]} == {"INTERNAL", "CAPSTONE"}
        for p in detail["projects"]:
            assert p["steps"] and p["tech_stack"] and p["estimated_hours"] > 0
    page = client.get("/api/curriculum/projects/", headers=student.headers,
                      params={"track": "FSD", "page_size": 4}).json()
    assert page["count"] == 10 and len(page["results"]) == 4 and page["next"]
    past_the_end = client.get("/api/curriculum/projects/", headers=student.headers,
                              params={"track": "FSD", "page_size": 4, "page": 4}).json()
    assert past_the_end["count"] == 10 and past_the_end["results"] == []
    assert past_the_end["next"] is None and "page=3" in past_the_end["previous"]
    steps = client.get(f"/api/curriculum/projects/{P1}/steps/", headers=student.headers)
    assert [s["number"] for s in steps.json()] == list(range(1, len(steps.json()) + 1))


def test_catalog_bad_input(client: httpx.Client, student: User) -> None:
    assert client.get("/api/curriculum/tracks/").status_code == 401
    r = client.get("/api/curriculum/projects/no-such-project/", headers=student.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = client.get("/api/curriculum/projects/BAD SLUG!/", headers=student.headers)
    assert r.status_code == 422
    assert client.get("/api/curriculum/tracks/XX/", headers=student.headers).status_code == 422
    r = client.get("/api/curriculum/projects/", headers=student.headers, params={"track": "Q"})
    assert r.status_code == 422


def test_projects_unlock_in_order_and_steps_are_tracked(
    client: httpx.Client, team: dict[str, User],
) -> None:
    s = team["s1"]
    r = progress(client, s, "start", P2)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROJECT_LOCKED"
    r = progress(client, s, "complete_step", P1, 1)
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROJECT_NOT_STARTED"
    assert progress(client, s, "start", P1).status_code == 200
    assert progress(client, s, "start", P1).status_code == 200  # idempotent
    r = progress(client, s, "complete_step", P1, 2)
    assert progress(client, s, "complete_step", P1, 3).status_code == 200
    r = progress(client, s, "uncomplete_step", P1, 2)
    me = r.json()
    first = me["projects"][0]
    assert first["status"] == "in_progress" and first["completed_steps"] == [3]
    assert me["projects"][1]["status"] == "locked"
    r = progress(client, s, "complete_step", P1, 99)
    assert r.status_code == 422 and r.json()["error"]["code"] == "UNKNOWN_STEP"
    r = progress(client, s, "complete_step", P1)
    assert r.status_code == 422
    r = progress(client, s, "start", "fsd-01-responsive-portfolio")
    assert r.status_code == 422 and r.json()["error"]["code"] == "WRONG_TRACK"
    r = progress(client, team["t1"], "start", P1)
    assert r.status_code == 403 and r.json()["error"]["code"] == "NOT_A_STUDENT"
    r = client.post("/api/curriculum/progress/", headers=s.headers,
                    json={"project_id": P1, "action": "finish"})
    assert r.status_code == 422


def test_full_review_cycle_with_ownership_and_notifications(
    client: httpx.Client, team: dict[str, User], mailbox: Mailbox, slack: Receiver,
) -> None:
    s1, s2, t1, t2 = team["s1"], team["s2"], team["t1"], team["t2"]
    sub = submit_p1(client, s1)
    sid = sub["id"]
    assert sub["status"] == "submitted" and sub["round"] == 1
    # Another student and another trainer can neither see nor act on it.
    for outsider in (s2, t2):
        assert client.get(f"/api/curriculum/submissions/{sid}/",
                          headers=outsider.headers).status_code == 404
        assert review(client, outsider, sid, "approve").status_code in (403, 404)
    r = client.put(f"/api/curriculum/submissions/{sid}/", headers=s2.headers,
                   json={"deliverables": {"findings_summary": "hijack"}})
    assert r.status_code == 404
    assert review(client, s1, sid, "approve").status_code == 403
    listed = client.get("/api/curriculum/submissions/", headers=s2.headers,
                        params={"student_id": s1.id}).json()
    assert all(x["student_id"] == s2.id for x in listed["results"])
    # The trainer hears about it and finds it in their queue.
    slack.wait_for(f"submitted {P1} (round 1)")
    mailbox.wait_for(t1.email, f"New submission: {P1}")
    queue = client.get("/api/curriculum/review-queue/", headers=t1.headers).json()
    assert [x["id"] for x in queue["results"]] == [sid]
    assert queue["results"][0]["waiting_seconds"] >= 0
    assert client.get("/api/curriculum/review-queue/", headers=t2.headers).json()["count"] == 0
    assert client.get("/api/curriculum/review-queue/", headers=s1.headers).status_code == 403
    # Review: changes requested (feedback required), edit, resubmit, approve.
    assert review(client, t1, sid, "start_review").json()["status"] == "under_review"
    r = review(client, t1, sid, "request_changes")
    assert r.status_code == 422 and r.json()["error"]["code"] == "FEEDBACK_REQUIRED"
    r = review(client, t1, sid, "request_changes", "Explain the Q4 spike.", {"sql": 3})
    assert r.status_code == 200 and r.json()["status"] == "changes_requested"
    mailbox.wait_for(s1.email, "returned with requested changes")
    r = client.put(f"/api/curriculum/submissions/{sid}/", headers=s1.headers, json={
        "deliverables": {"findings_summary": "Q4 spike: holiday promotions."}, "submit": True})
    assert r.status_code == 200 and r.json()["round"] == 2
    r = review(client, t1, sid, "approve", "Well argued.", {"sql": 5, "clarity": 4})
    assert r.status_code == 200
    done = r.json()
    assert done["status"] == "approved" and done["rubric"] == {"sql": 5, "clarity": 4}
    events = [h["event"] for h in done["history"]]
    assert events == ["Drafted", "DeliverableSet", "DeliverableSet", "Submitted",
                      "ReviewStarted", "ChangesRequested", "DeliverableSet", "Submitted",
                      "Approved"]
    actors = {h["event"]: h["actor_id"] for h in done["history"]}
    assert actors["Approved"] == t1.id and actors["Submitted"] == s1.id
    mailbox.wait_for(s1.email, "was approved")
    slack.wait_for(f"{P1} by Student approved")
    # Approval unlocked project 2 in the same transaction.
    me = client.get("/api/curriculum/progress/me/", headers={
        **s1.headers, "X-Position": r.headers["X-Position"]}).json()
    assert [p["status"] for p in me["projects"][:3]] == ["approved", "available", "locked"]
    assert me["approved_projects"] == 1 and me["percent_complete"] == 10.0
    # Another student of the same track sees only their own progress, not s1's.
    other = client.get("/api/curriculum/progress/me/", headers=team["s2"].headers).json()
    assert [p["status"] for p in other["projects"][:2]] == ["available", "locked"]
    assert other["approved_projects"] == 0 and other["projects"][0]["submission_id"] is None
    assert progress(client, s1, "start", P2).status_code == 200


def test_progress_me_follows_a_track_change_and_keeps_the_old_tracks_work(
    client: httpx.Client, team: dict[str, User], admin: User,
) -> None:
    s = team["s1"]
    assert progress(client, s, "start", P1).status_code == 200
    assert progress(client, s, "complete_step", P1, 1).status_code == 200

    def change_track(track: str) -> dict[str, Any]:
        r = client.put(f"/api/users/{s.id}/", headers=admin.headers,
                       json={"track": track, "reason": "changed programme"})
        assert r.status_code == 200, r.text
        me = client.get("/api/curriculum/progress/me/", headers={
            **s.headers, "X-Position": r.headers["X-Position"]})
        assert me.status_code == 200, me.text
        return dict(me.json())

    fsd = change_track("FSD")
    assert fsd["track"] == "FSD" and len(fsd["projects"]) == 10
    assert all(p["project_id"].startswith("fsd-") for p in fsd["projects"])
    assert [p["status"] for p in fsd["projects"][:2]] == ["available", "locked"]
    assert all(p["completed_steps"] == [] for p in fsd["projects"])
    dp = change_track("DP")
    assert dp["projects"][0]["project_id"] == P1
    assert dp["projects"][0]["status"] == "in_progress"
    assert dp["projects"][0]["completed_steps"] == [1]


def test_invalid_transitions_are_409(client: httpx.Client, team: dict[str, User],
                                     admin: User) -> None:
    s1, t1 = team["s1"], team["t1"]
    assert progress(client, s1, "start", P1).status_code == 200
    draft = client.post("/api/curriculum/submissions/", headers=s1.headers,
                        json={"project_id": P1, "deliverables": {"repository": REPO}}).json()
    assert draft["status"] == "draft"
    r = review(client, t1, draft["id"], "approve")
    assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_TRANSITION"
    r = client.put(f"/api/curriculum/submissions/{draft['id']}/", headers=s1.headers,
                   json={"submit": True})
    assert r.status_code == 422 and r.json()["error"]["code"] == "MISSING_DELIVERABLES"
    assert r.json()["error"]["details"]["missing"] == ["findings_summary"]
    r = client.post("/api/curriculum/submissions/", headers=s1.headers,
                    json={"project_id": P1})
    assert r.status_code == 409 and r.json()["error"]["code"] == "SUBMISSION_EXISTS"
    r = client.put(f"/api/curriculum/submissions/{draft['id']}/", headers=s1.headers,
                   json={"deliverables": {"findings_summary": "Done."}, "submit": True})
    assert r.status_code == 200
    r = client.put(f"/api/curriculum/submissions/{draft['id']}/", headers=s1.headers,
                   json={"submit": True})
    assert r.status_code == 409 and r.json()["error"]["code"] == "INVALID_TRANSITION"
    # Admins review anyone's work.
    assert review(client, admin, draft["id"], "approve", "ok").status_code == 200
    r = client.put(f"/api/curriculum/submissions/{draft['id']}/", headers=s1.headers,
                   json={"deliverables": {"findings_summary": "sneaky edit"}})
    assert r.status_code == 409
    r = review(client, t1, draft["id"], "request_changes", "too late")
    assert r.status_code == 409


def test_deliverable_values_are_checked(client: httpx.Client, team: dict[str, User]) -> None:
    s1 = team["s1"]
    assert progress(client, s1, "start", P1).status_code == 200
    cases = [({"repository": "https://gitlab.com/a/b"}, "INVALID_DELIVERABLE"),
             ({"repository": "not a url"}, "INVALID_DELIVERABLE"),
             ({"findings_summary": "   "}, "INVALID_DELIVERABLE"),
             ({"no_such_key": "x"}, "UNKNOWN_DELIVERABLE")]
    for deliverables, code in cases:
        r = client.post("/api/curriculum/submissions/", headers=s1.headers,
                        json={"project_id": P1, "deliverables": deliverables})
        assert r.status_code in (404, 422) and r.json()["error"]["code"] == code
    # Nothing half-written: a valid create still works afterwards.
    r = client.post("/api/curriculum/submissions/", headers=s1.headers,
                    json={"project_id": P1, "deliverables": {"repository": REPO}})
    assert r.status_code == 201
    r = client.post("/api/curriculum/submissions/", headers=s1.headers,
                    json={"project_id": P2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "PROJECT_NOT_STARTED"


def test_concurrent_creation_makes_one_submission(
    server: Server, client: httpx.Client, team: dict[str, User],
) -> None:
    s1 = team["s1"]
    assert progress(client, s1, "start", P1).status_code == 200
    codes: list[int] = []

    def create() -> None:
        with server.client() as c:
            codes.append(c.post("/api/curriculum/submissions/", headers=s1.headers,
                                json={"project_id": P1}).status_code)

    threads = [threading.Thread(target=create) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * 5


def _approved_p1(client: httpx.Client, team: dict[str, User]) -> None:
    sub = submit_p1(client, team["s1"])
    assert review(client, team["t1"], sub["id"], "approve", "ok").status_code == 200
    assert progress(client, team["s1"], "start", P2).status_code == 200


def test_file_deliverables_upload_limits_and_access(
    client: httpx.Client, team: dict[str, User],
) -> None:
    s1, s2, t1, t2 = team["s1"], team["s2"], team["t1"], team["t2"]
    _approved_p1(client, team)
    sub = client.post("/api/curriculum/submissions/", headers=s1.headers,
                      json={"project_id": P2, "deliverables": {
                          "repository": "https://github.com/ada/wrangling"}}).json()
    url = f"/api/curriculum/submissions/{sub['id']}/deliverables/data_quality_report/file/"
    r = client.post(url, headers=s1.headers, files={"file": ("report.pdf", PDF)})
    assert r.status_code == 200, r.text
    stored = r.json()["deliverables"]["data_quality_report"]
    assert stored["size"] == len(PDF) and stored["content_type"] == "application/pdf"
    assert len(stored["sha256"]) == 64
    for reader in (s1, t1):
        got = client.get(url, headers=reader.headers)
        assert got.status_code == 200 and got.content == PDF
    for outsider in (s2, t2):
        assert client.get(url, headers=outsider.headers).status_code == 404
        r = client.post(url, headers=outsider.headers, files={"file": ("x.pdf", PDF)})
        assert r.status_code == 404
    bad = [(("evil.exe", b"MZ\x90\x00"), 422, "UNSUPPORTED_FILE_TYPE"),
           (("fake.pdf", b"<html>not a pdf</html>"), 422, "FILE_CONTENT_MISMATCH"),
           (("empty.pdf", b""), 422, "EMPTY_FILE"),
           (("big.pdf", b"%PDF-" + b"0" * (10 * 1024 * 1024)), 413, "PAYLOAD_TOO_LARGE")]
    for file, status, code in bad:
        r = client.post(url, headers=s1.headers, files={"file": file})
        assert r.status_code == status and r.json()["error"]["code"] in (code, "FILE_TOO_LARGE")
    other = f"/api/curriculum/submissions/{sub['id']}/deliverables/repository/file/"
    r = client.post(other, headers=s1.headers, files={"file": ("r.pdf", PDF)})
    assert r.status_code == 422 and r.json()["error"]["code"] == "NOT_A_FILE_DELIVERABLE"
    r = client.post(url, headers=s1.headers)
    assert r.status_code == 422
    # The good file is still the one on record.
    assert client.get(url, headers=s1.headers).content == PDF


def test_a_revision_is_a_new_version_and_started_students_keep_theirs(
    server: Server, client: httpx.Client, team: dict[str, User],
) -> None:
    s1 = team["s1"]
    assert progress(client, s1, "start", P1).status_code == 200
    before = catalog_project(client, s1, P1)
    with (CONTENT / "curriculum.toml").open("rb") as f:
        revised = copy.deepcopy(tomllib.load(f))
    project = revised["tracks"][0]["projects"][0]
    project["steps"].append({"number": len(project["steps"]) + 1, "title": "Peer review",
                             "description": "Review a classmate's queries."})
    position = server.container.curriculum.publish(revised, None, "add a peer-review step")
    assert position > 0
    assert server.container.curriculum.publish(revised, None, "again") == 0  # unchanged
    server.container.catalog.wait_for(position, 5)
    after = catalog_project(client, s1, P1)
    assert after["version"] == before["version"] + 1
    assert len(after["steps"]) == len(before["steps"]) + 1
    me = client.get("/api/curriculum/progress/me/", headers=s1.headers).json()
    assert me["projects"][0]["steps_total"] == len(before["steps"])
    r = progress(client, s1, "complete_step", P1, len(after["steps"]))
    assert r.status_code == 422  # not a step of the version they started on
    newcomer = register_student(client)
    assert progress(client, newcomer, "start", P1).status_code == 200
    r = progress(client, newcomer, "complete_step", P1, len(after["steps"]))
    assert r.status_code == 200
    assert r.json()["projects"][0]["steps_total"] == len(after["steps"])
