"""Quizzes over HTTP: authoring, the answer-key wall, attempts, grading, regrading."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from domain.roles import Role
from tests.conftest import Server, User, make_staff, register_student

SECRET_FIELDS = ("correct", "explanation", "is_correct")


def no_keys(payload: Any) -> bool:
    """True when no answer key appears anywhere in a JSON payload."""
    text = json.dumps(payload)
    return not any(f'"{field}"' in text for field in SECRET_FIELDS)


def generate(client: httpx.Client, author: User, n: int = 4, **extra: Any) -> dict[str, Any]:
    r = client.post("/api/quiz/quizzes/generate/", headers=author.headers, json={
        "title": "SQL check", "prompt": "SQL joins, WHERE and GROUP BY", "num_questions": n,
        "track": "DP", **extra})
    assert r.status_code == 202, r.text
    quiz_id = r.json()["id"]
    at = {**author.headers, "X-Position": r.headers["X-Position"]}
    deadline = time.monotonic() + 20
    while True:
        quiz = client.get(f"/api/quiz/quizzes/{quiz_id}/", headers=at).json()
        if quiz.get("status") not in (None, "generating"):
            assert quiz["status"] == "draft", quiz
            return dict(quiz)
        assert time.monotonic() < deadline
        time.sleep(0.05)


def publish(client: httpx.Client, author: User, quiz: dict[str, Any],
            **settings: Any) -> dict[str, Any]:
    if settings:
        r = client.put(f"/api/quiz/quizzes/{quiz['id']}/", headers=author.headers,
                       json={"settings": settings})
        assert r.status_code == 200, r.text
    r = client.post(f"/api/quiz/quizzes/{quiz['id']}/publish/", headers=author.headers)
    assert r.status_code == 200 and r.json()["status"] == "published"
    return dict(r.json())


def correct_ids(question: dict[str, Any]) -> list[str]:
    return [o["id"] for o in question["options"] if o["correct"]]


def wrong_ids(question: dict[str, Any]) -> list[str]:
    return [o["id"] for o in question["options"] if not o["correct"]][:1]


def start(client: httpx.Client, student: User, quiz_id: str) -> httpx.Response:
    return client.post(f"/api/quiz/quizzes/{quiz_id}/start/", headers=student.headers)


def answer(client: httpx.Client, student: User, attempt_id: str, qid: str,
           options: list[str]) -> httpx.Response:
    return client.post(f"/api/quiz/attempts/{attempt_id}/answer/", headers=student.headers,
                       json={"question_id": qid, "option_ids": options})


@pytest.fixture
def author(server: Server, client: httpx.Client) -> User:
    return make_staff(server, client, Role.TRAINER)


def test_generation_is_accepted_at_once_and_fills_in_later(
    client: httpx.Client, author: User, student: User,
) -> None:
    quiz = generate(client, author, 6)
    assert len(quiz["questions"]) == 6
    assert all(len(correct_ids(q)) >= 1 for q in quiz["questions"])
    assert quiz["provenance"]["generator"] == "offline-question-bank"
    # A student can't generate, and can't see a quiz that isn't published.
    r = client.post("/api/quiz/quizzes/generate/", headers=student.headers,
                    json={"title": "x", "prompt": "y", "num_questions": 2})
    assert r.status_code == 403
    assert client.get(f"/api/quiz/quizzes/{quiz['id']}/",
                      headers=student.headers).status_code == 404
    listed = client.get("/api/quiz/quizzes/", headers=student.headers).json()
    assert quiz["id"] not in {x["id"] for x in listed["results"]}


def test_students_list_the_quizzes_of_their_track_and_follow_a_track_change(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    quizzes = {track: publish(client, author, generate(client, author, 2, track=track))["id"]
               for track in ("DP", "FSD", None)}
    admin = make_staff(server, client, Role.ADMIN)

    def listed(headers: dict[str, str]) -> set[str]:
        r = client.get("/api/quiz/quizzes/?page_size=100", headers=headers)
        assert r.status_code == 200, r.text
        return {q["id"] for q in r.json()["results"]} & set(quizzes.values())

    assert listed(student.headers) == {quizzes["DP"], quizzes[None]}
    r = client.put(f"/api/users/{student.id}/", headers=admin.headers,
                   json={"track": "FSD", "reason": "changed programme"})
    assert r.status_code == 200, r.text
    at = {**student.headers, "X-Position": r.headers["X-Position"]}
    assert listed(at) == {quizzes["FSD"], quizzes[None]}
    # Staff who are not authors see every published quiz, whatever its track.
    assert listed(admin.headers) == set(quizzes.values())


@pytest.mark.parametrize("body", [
    {"title": "x", "prompt": "y", "num_questions": 0},
    {"title": "x", "prompt": "y", "num_questions": 51},
    {"title": "x", "prompt": "y", "num_questions": 3, "generation_type": "MAGIC"},
    {"title": "", "prompt": "y", "num_questions": 3},
    {"title": "x", "prompt": "y", "num_questions": 3, "track": "ZZ"},
    {"title": "x", "prompt": "y", "num_questions": 3, "owner_id": "me"},
])
def test_generation_bad_input(client: httpx.Client, author: User, body: dict[str, Any]) -> None:
    r = client.post("/api/quiz/quizzes/generate/", headers=author.headers, json=body)
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_students_never_receive_answer_keys_before_the_policy_allows(
    client: httpx.Client, author: User,
) -> None:
    s1, s2 = register_student(client), register_student(client)
    quiz = publish(client, author, generate(client, author, 3), attempts_allowed=2,
                   show_answers="after_last_attempt")
    for payload in (client.get(f"/api/quiz/quizzes/{quiz['id']}/", headers=s1.headers).json(),
                    client.get("/api/quiz/quizzes/", headers=s1.headers).json()):
        assert no_keys(payload)
    r = start(client, s1, quiz["id"])
    assert r.status_code == 201 and no_keys(r.json())
    attempt = r.json()
    assert start(client, s1, quiz["id"]).json()["id"] == attempt["id"]  # resumed, not new
    for q in quiz["questions"]:
        assert answer(client, s1, attempt["id"], q["id"], wrong_ids(q)).status_code == 200
    # The other student can neither read nor touch this attempt.
    assert client.get(f"/api/quiz/attempts/{attempt['id']}/",
                      headers=s2.headers).status_code == 404
    q0 = quiz["questions"][0]
    assert answer(client, s2, attempt["id"], q0["id"], []).status_code == 404
    r = client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=s1.headers)
    result = r.json()
    assert result["status"] == "submitted" and result["score"] == 0.0
    assert result["answers_visible"] is False and no_keys(result)
    again = client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=s1.headers)
    assert again.status_code == 200 and again.json()["score"] == 0.0  # double submit: harmless
    # Second (last) attempt: all correct; now the review policy opens the keys.
    second = start(client, s1, quiz["id"]).json()
    assert second["id"] != attempt["id"] and second["number"] == 2
    for q in quiz["questions"]:
        answer(client, s1, second["id"], q["id"], correct_ids(q))
    result = client.post(f"/api/quiz/attempts/{second['id']}/submit/",
                         headers=s1.headers).json()
    assert result["percent"] == 100.0 and result["answers_visible"] is True
    assert {f["question_id"]: f["correct_option_ids"] for f in result["feedback"]} == {
        q["id"]: correct_ids(q) for q in quiz["questions"]}
    r = start(client, s1, quiz["id"])
    assert r.status_code == 409 and r.json()["error"]["code"] == "NO_ATTEMPTS_LEFT"
    grade = client.get(f"/api/quiz/quizzes/{quiz['id']}/grade/", headers=s1.headers).json()
    assert grade["grade"] == 100.0 and grade["grading_method"] == "highest"
    history = client.get("/api/quiz/attempts/", headers=s1.headers,
                         params={"quiz_id": quiz["id"]}).json()
    assert history["count"] == 2 and no_keys(history)


def test_answers_are_validated(client: httpx.Client, author: User, student: User) -> None:
    quiz = publish(client, author, generate(client, author, 6))
    attempt = start(client, student, quiz["id"]).json()
    single = next(q for q in quiz["questions"] if q["type"] == "SINGLE")
    ids = [o["id"] for o in single["options"]]
    cases = [(single["id"], ids[:2], "ONE_OPTION_ONLY"),
             (single["id"], ["ozzzzzzzz"], "UNKNOWN_OPTION"),
             ("qnothere1", [ids[0]], "UNKNOWN_QUESTION")]
    for qid, options, code in cases:
        r = answer(client, student, attempt["id"], qid, options)
        assert r.status_code == 422 and r.json()["error"]["code"] == code
    for body in ({"question_id": single["id"]}, {"question_id": 5, "option_ids": []},
                 {"question_id": single["id"], "option_ids": ids, "extra": 1},
                 {"question_id": single["id"], "option_ids": ["x"] * 7}):
        r = client.post(f"/api/quiz/attempts/{attempt['id']}/answer/",
                        headers=student.headers, json=body)
        assert r.status_code == 422
    missing = "00000000-0000-4000-8000-000000000009"
    assert answer(client, student, missing, single["id"], []).status_code == 404
    assert start(client, student, missing).status_code == 404


class Later:
    """A clock two minutes ahead: past a one-minute limit and its grace."""

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=120)


@contextmanager
def two_minutes_later(server: Server) -> Iterator[None]:
    commands = server.container.quizzes
    real_clock = commands.clock
    commands.clock = Later()
    try:
        yield
    finally:
        commands.clock = real_clock


def timed_attempt(client: httpx.Client, author: User, student: User
                  ) -> tuple[dict[str, Any], dict[str, Any], httpx.Response]:
    """A two-question quiz with a one-minute limit, the student's attempt at it and the
    response to a correct answer to its first question."""
    quiz = publish(client, author, generate(client, author, 2), time_limit_seconds=60,
                   show_answers="immediately")
    attempt = start(client, student, quiz["id"]).json()
    first = quiz["questions"][0]
    return quiz, attempt, answer(client, student, attempt["id"], first["id"],
                                 correct_ids(first))


def test_reading_an_attempt_past_its_time_limit_submits_it(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    _, attempt, saved = timed_attempt(client, author, student)
    url = f"/api/quiz/attempts/{attempt['id']}/"
    at = {**student.headers, "X-Position": saved.headers["X-Position"]}
    in_time = client.get(url, headers=at).json()
    assert in_time["status"] == "in_progress"  # reading in time changes nothing
    with two_minutes_later(server):
        late = client.get(url, headers=student.headers)
    assert late.status_code == 200
    body = late.json()
    assert body["status"] == "submitted" and body["automatic"] is True
    assert body["score"] == 1.0 and body["max_score"] == 2.0


def test_another_student_reading_an_overdue_attempt_neither_sees_nor_submits_it(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    other = register_student(client)
    _, attempt, saved = timed_attempt(client, author, student)
    url = f"/api/quiz/attempts/{attempt['id']}/"
    with two_minutes_later(server):
        r = client.get(url, headers=other.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    mine = client.get(url, headers={**student.headers,
                                    "X-Position": saved.headers["X-Position"]}).json()
    assert mine["status"] == "in_progress"


def test_reading_and_starting_attempts_refuse_malformed_input(
    client: httpx.Client, student: User,
) -> None:
    # An id that is not a UUID names no resource.
    for r in (client.get("/api/quiz/attempts/not-a-uuid/", headers=student.headers),
              client.post("/api/quiz/quizzes/not-a-uuid/start/", headers=student.headers)):
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    for r in (client.get("/api/quiz/attempts/00000000-0000-4000-8000-000000000009/",
                         headers={**student.headers, "X-Position": "soon"}),):
        assert r.status_code == 422
        assert r.json()["status"] == "error"
        assert r.json()["error"]["code"] == "VALIDATION_ERROR"


def test_time_limit_auto_submits_with_the_saved_answers(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    quiz, attempt, saved = timed_attempt(client, author, student)
    assert attempt["deadline"] is not None and 0 < attempt["time_remaining_seconds"] <= 60
    assert saved.status_code == 200
    first, second = quiz["questions"]
    with two_minutes_later(server):
        r = answer(client, student, attempt["id"], second["id"], correct_ids(second))
        assert r.status_code == 409 and r.json()["error"]["code"] == "ATTEMPT_EXPIRED"
        submitted_at = str(r.json()["error"]["details"]["position"])
    result = client.get(f"/api/quiz/attempts/{attempt['id']}/", headers={
        **student.headers, "X-Position": submitted_at}).json()
    assert result["status"] == "submitted" and result["automatic"] is True
    assert result["answers"] == {first["id"]: sorted(correct_ids(first))}
    assert result["score"] == 1.0 and result["max_score"] == 2.0


def test_concurrent_answers_and_a_submit_racing_them_lose_nothing(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    quiz = publish(client, author, generate(client, author, 8), show_answers="immediately")
    attempt = start(client, student, quiz["id"]).json()
    results: dict[str, int] = {}

    def save(q: dict[str, Any]) -> None:
        with server.client() as c:
            results[q["id"]] = answer(c, student, attempt["id"], q["id"],
                                      correct_ids(q)).status_code

    def submit() -> None:
        with server.client() as c:
            results["submit"] = c.post(f"/api/quiz/attempts/{attempt['id']}/submit/",
                                       headers=student.headers).status_code

    threads = [threading.Thread(target=save, args=(q,)) for q in quiz["questions"]]
    threads.insert(4, threading.Thread(target=submit))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["submit"] == 200
    final = client.get(f"/api/quiz/attempts/{attempt['id']}/", headers=student.headers).json()
    for q in quiz["questions"]:
        if results[q["id"]] == 200:
            assert final["answers"][q["id"]] == sorted(correct_ids(q))  # saved → graded
        else:
            assert results[q["id"]] == 409 and q["id"] not in final["answers"]
    assert final["score"] == len(final["answers"])


def test_only_owners_and_admins_delete_and_see_statistics(
    server: Server, client: httpx.Client, author: User, admin: User, student: User,
) -> None:
    other = make_staff(server, client, Role.TRAINER)
    quiz = publish(client, author, generate(client, author, 3), show_answers="never",
                   attempts_allowed=3)
    attempt = start(client, student, quiz["id"]).json()
    q0, q1 = quiz["questions"][0], quiz["questions"][1]
    answer(client, student, attempt["id"], q0["id"], correct_ids(q0))
    answer(client, student, attempt["id"], q1["id"], wrong_ids(q1))
    r = client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=student.headers)
    assert r.json()["answers_visible"] is False and no_keys(r.json())
    stats = client.get(f"/api/quiz/quizzes/{quiz['id']}/statistics/", headers={
        **author.headers, "X-Position": r.headers["X-Position"]}).json()
    assert stats["attempts"] == 1 and stats["students"] == 1
    by_q = {s["question_id"]: s for s in stats["questions"]}
    assert by_q[q0["id"]]["difficulty"] == 0.0 and by_q[q1["id"]]["difficulty"] == 1.0
    for outsider in (other, student):
        r = client.get(f"/api/quiz/quizzes/{quiz['id']}/statistics/", headers=outsider.headers)
        assert r.status_code == 404
    # Another trainer sees the published quiz only as a taker would.
    assert no_keys(client.get(f"/api/quiz/quizzes/{quiz['id']}/", headers=other.headers).json())
    r = client.delete(f"/api/quiz/quizzes/{quiz['id']}/", headers=other.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "NOT_YOUR_QUIZ"
    assert client.delete(f"/api/quiz/quizzes/{quiz['id']}/",
                         headers=student.headers).status_code == 404
    r = client.delete(f"/api/quiz/quizzes/{quiz['id']}/", headers=admin.headers)
    assert r.status_code == 204
    listed = client.get("/api/quiz/quizzes/", headers={
        **student.headers, "X-Position": r.headers["X-Position"]}).json()
    assert quiz["id"] not in {x["id"] for x in listed["results"]}
    assert start(client, student, quiz["id"]).status_code == 404
    own = client.get("/api/quiz/quizzes/", headers=author.headers,
                     params={"status": "archived"}).json()
    assert quiz["id"] in {x["id"] for x in own["results"]}


def test_editing_is_validated_and_regrade_shows_a_dry_run_first(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    quiz = publish(client, author, generate(client, author, 2), show_answers="immediately")
    attempt = start(client, student, quiz["id"]).json()
    q0 = quiz["questions"][0]
    chosen = wrong_ids(q0)
    answer(client, student, attempt["id"], q0["id"], chosen)
    before = client.post(f"/api/quiz/attempts/{attempt['id']}/submit/",
                         headers=student.headers).json()
    # Invalid edits: two correct options on a SINGLE question; dropping a question.
    broken = json.loads(json.dumps(quiz["questions"]))
    for o in broken[0]["options"]:
        o["correct"] = True
    r = client.put(f"/api/quiz/quizzes/{quiz['id']}/", headers=author.headers,
                   json={"questions": broken})
    assert r.status_code == 422 and r.json()["error"]["code"] == "INVALID_QUESTIONS"
    r = client.put(f"/api/quiz/quizzes/{quiz['id']}/", headers=author.headers,
                   json={"questions": quiz["questions"][:1]})
    assert r.status_code == 409
    # The key was wrong: the student's option was right after all.
    fixed = json.loads(json.dumps(quiz["questions"]))
    fixed[0]["type"] = "SINGLE"
    for o in fixed[0]["options"]:
        o["correct"] = o["id"] in chosen
    r = client.put(f"/api/quiz/quizzes/{quiz['id']}/", headers=author.headers,
                   json={"questions": fixed, "reason": "answer key corrected"})
    assert r.status_code == 200
    url = f"/api/quiz/quizzes/{quiz['id']}/regrade/"
    dry = client.post(url, headers=author.headers, json={"dry_run": True}).json()
    assert dry["dry_run"] is True
    [change] = [c for c in dry["changes"] if c["attempt_id"] == attempt["id"]]
    assert change["new_score"] == change["previous_score"] + 1
    unchanged = client.get(f"/api/quiz/attempts/{attempt['id']}/", headers=student.headers)
    assert unchanged.json()["score"] == before["score"]
    r = client.post(url, headers=author.headers, json={"dry_run": False, "reason": "key fix"})
    assert r.status_code == 200 and len(r.json()["changes"]) == len(dry["changes"])
    after = client.get(f"/api/quiz/attempts/{attempt['id']}/", headers={
        **student.headers, "X-Position": r.headers["X-Position"]}).json()
    assert after["score"] == before["score"] + 1
    assert client.post(url, headers=author.headers, json={"dry_run": False}).json()[
        "changes"] == []
    assert client.post(url, headers=student.headers, json={}).status_code == 404


RECOUNT = """
WITH submitted AS (SELECT student_id, percent, per_question FROM rm_attempts
                   WHERE quiz_id = %(quiz)s AND status = 'submitted')
SELECT count(*) AS attempts, count(DISTINCT student_id) AS students,
       round(avg(percent)::numeric, 2)::float AS average_percent,
       min(percent) AS lowest_percent, max(percent) AS highest_percent,
       (SELECT jsonb_object_agg(key, jsonb_build_array(n, round(average::numeric, 4)))
        FROM (SELECT q.key, count(*) AS n, avg(q.value::double precision) AS average
              FROM submitted, jsonb_each_text(submitted.per_question) q GROUP BY q.key) p
       ) AS questions
FROM submitted
"""


def test_statistics_running_totals_equal_a_recount_through_submissions_and_regrades(
    server: Server, client: httpx.Client, author: User, student: User,
) -> None:
    quiz = publish(client, author, generate(client, author, 3), show_answers="immediately",
                   attempts_allowed=3)
    q0, q1, _ = quiz["questions"]
    other = register_student(client)

    def take(who: User, answers: dict[str, list[str]]) -> str:
        attempt = start(client, who, quiz["id"]).json()
        for qid, chosen in answers.items():
            answer(client, who, attempt["id"], qid, chosen)
        r = client.post(f"/api/quiz/attempts/{attempt['id']}/submit/", headers=who.headers)
        assert r.status_code == 200
        return r.headers["X-Position"]

    take(student, {q0["id"]: correct_ids(q0), q1["id"]: wrong_ids(q1)})
    take(student, {q0["id"]: correct_ids(q0), q1["id"]: correct_ids(q1)})
    position = take(other, {q1["id"]: wrong_ids(q1)})

    def stats(at: str) -> dict[str, Any]:
        r = client.get(f"/api/quiz/quizzes/{quiz['id']}/statistics/",
                       headers={**author.headers, "X-Position": at})
        assert r.status_code == 200
        return dict(r.json())

    def recounted() -> dict[str, Any]:
        row = server.container.attempts.fetch_one(RECOUNT, {"quiz": quiz["id"]})
        assert row is not None
        return dict(row)

    def agree(shown: dict[str, Any]) -> None:
        expected = recounted()
        for field in ("attempts", "students", "average_percent", "lowest_percent",
                      "highest_percent"):
            assert shown[field] == expected[field], field
        assert {q["question_id"]: [q["answered"], q["average_score"]]
                for q in shown["questions"]} == expected["questions"]

    shown = stats(position)
    assert shown["attempts"] == 3 and shown["students"] == 2
    agree(shown)
    # The key of q1 was wrong: the option two attempts chose is the right one.
    fixed = json.loads(json.dumps(quiz["questions"]))
    fixed[1]["type"] = "SINGLE"
    for o in fixed[1]["options"]:
        o["correct"] = o["id"] in wrong_ids(q1)
    assert client.put(f"/api/quiz/quizzes/{quiz['id']}/", headers=author.headers,
                      json={"questions": fixed, "reason": "key fix"}).status_code == 200
    r = client.post(f"/api/quiz/quizzes/{quiz['id']}/regrade/", headers=author.headers,
                    json={"dry_run": False, "reason": "key fix"})
    assert len(r.json()["changes"]) == 3
    regraded = stats(r.headers["X-Position"])
    assert regraded["average_percent"] != shown["average_percent"]
    agree(regraded)
    # Totals missing for attempts already stored (a model from before them) are filled
    # in from the attempts when the model's tables are created.
    view = server.container.attempts
    with view.datastore.transaction(commit=True) as curs:
        for table in ("rm_quiz_totals", "rm_quiz_takers", "rm_quiz_question_totals"):
            curs.execute(f"DELETE FROM {table} WHERE quiz_id = %s", (quiz["id"],))
    view.create_table()
    agree(stats(r.headers["X-Position"]))


def test_the_quiz_list_is_answered_from_memory_until_a_quiz_is_published(
        server: Server, client: httpx.Client, author: User) -> None:
    student = register_student(client, "DP")
    answers = server.container.answers
    first = client.get("/api/quiz/quizzes/", headers=student.headers)
    assert first.status_code == 200
    hits = answers.hits
    again = client.get("/api/quiz/quizzes/", headers=student.headers)
    assert again.content == first.content and answers.hits == hits + 1
    # Publishing moves the students' model: with its position, the list shows the quiz.
    quiz = generate(client, author)
    r = client.post(f"/api/quiz/quizzes/{quiz['id']}/publish/", headers=author.headers)
    assert r.status_code == 200
    listed = client.get("/api/quiz/quizzes/", headers={
        **student.headers, "X-Position": r.headers["X-Position"]})
    assert quiz["id"] in [q["id"] for q in listed.json()["results"]]
    assert listed.json()["count"] == first.json()["count"] + 1
    # Another student of the track gets an answer of their own, not the first one's.
    other = client.get("/api/quiz/quizzes/", headers=register_student(client, "FSD").headers)
    assert quiz["id"] not in [q["id"] for q in other.json()["results"]]
