"""Quiz generators: the offline question bank, and Gemini through the real SDK.

The Gemini adapter talks HTTP to a local server that answers with valid, invalid and
truncated outputs and with error statuses; nothing leaves the machine.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from uuid import uuid4

import httpx
import pytest

from application.ports import GenerationError, QuizRequest
from domain.quizzes import question_problems
from domain.roles import Role
from infrastructure.gemini import GeminiGenerator
from infrastructure.question_bank import QuestionBankGenerator
from infrastructure.settings import CONTENT
from tests.conftest import (
    Mailbox,
    Server,
    User,
    login,
    make_settings,
    make_staff,
    new_database,
    running_server,
    unique_email,
)
from tests.fake_gemini import candidate, fake_gemini, quiz_json
from tests.integration.test_quizzes_api import generate as generate_quiz

ERROR_500 = {"error": {"code": 500, "message": "internal", "status": "INTERNAL"}}
ERROR_400 = {"error": {"code": 400, "message": "API key not valid", "status":
                       "INVALID_ARGUMENT"}}


def request(n: int = 5, prompt: str = "SQL joins and aggregation", track: str | None = "DP",
            kind: str = "PROMPT") -> QuizRequest:
    return QuizRequest(uuid4(), "Weekly quiz", prompt, kind, n, track)


def test_offline_bank_draws_valid_relevant_questions() -> None:
    bank = QuestionBankGenerator(CONTENT / "question_bank.toml")
    req = request(12)
    result = bank.generate(req)
    assert len(result.questions) == 12
    assert question_problems(result.questions, 12) == []
    assert result.provenance["generator"] == "offline-question-bank"
    assert any("sql" in topic for topic in result.provenance["topics"])
    assert bank.generate(req).questions == result.questions  # same quiz, same draw
    fsd = bank.generate(request(8, "React components and hooks", "FSD"))
    fsd_topics = {t["slug"] for t in bank.topics if t["track"] == "FSD"}
    assert set(fsd.provenance["topics"]) <= fsd_topics


def test_offline_bank_matches_meaningful_words_not_and_or_the() -> None:
    bank = QuestionBankGenerator(CONTENT / "question_bank.toml")
    result = bank.generate(request(5, "JavaScript and the async functions", "FSD"))
    assert result.provenance["topics"] == ["javascript-fundamentals"]


def test_generated_options_are_stored_in_no_telling_order(
    server: Server, client: httpx.Client,
) -> None:
    trainer = make_staff(server, client, Role.TRAINER)
    firsts, questions = 0, 0
    for _ in range(6):
        quiz = generate_quiz(client, trainer, 10)
        for q in quiz["questions"]:
            if q["type"] == "SINGLE":
                questions += 1
                firsts += q["options"][0]["correct"]
    # The bank lists the right option first every time; 1 in 3 or 4 once shuffled.
    assert questions >= 40 and firsts / questions < 0.5, (firsts, questions)


def test_offline_bank_refuses_more_than_it_has() -> None:
    bank = QuestionBankGenerator(CONTENT / "question_bank.toml")
    with pytest.raises(GenerationError) as error:
        bank.generate(request(500))
    assert "only" in error.value.reason


def gemini(url: str, attempts: int = 3) -> GeminiGenerator:
    return GeminiGenerator("test-key", "gemini-test", base_url=url, max_attempts=attempts,
                           timeout_seconds=10)


def test_gemini_valid_structured_output() -> None:
    with fake_gemini() as fake:
        fake.script = [(200, candidate(quiz_json(3)))]
        result = gemini(fake.url).generate(request(3))
        assert len(result.questions) == 3 and result.questions[0]["options"][0]["correct"]
        assert result.provenance["model"] == "gemini-test"
        assert "exactly 3 questions" in result.provenance["prompt"]
        assert result.provenance["attempts"] == 1
        sent = fake.requests[0]
        assert sent["generationConfig"]["responseMimeType"] == "application/json"
        assert "responseSchema" in sent["generationConfig"] or \
            "responseJsonSchema" in sent["generationConfig"]
        assert fake.paths[0].endswith("/models/gemini-test:generateContent")


def test_gemini_invalid_output_is_corrected_with_a_follow_up_prompt() -> None:
    with fake_gemini() as fake:
        fake.script = [(200, candidate(quiz_json(2))), (200, candidate(quiz_json(3)))]
        result = gemini(fake.url).generate(request(3))
        assert result.provenance["attempts"] == 2
        follow_up = fake.requests[1]["contents"]
        assert len(follow_up) == 3
        assert "expected 3 questions, got 2" in follow_up[-1]["parts"][0]["text"]


def test_gemini_output_holding_unstorable_text_is_asked_again_then_refused() -> None:
    poisoned = quiz_json(2).replace("Clause A for 0", "Clause \\u0000A")
    surrogate = quiz_json(2).replace("Which SQL clause", "Which \\ud800 SQL clause", 1)
    with fake_gemini() as fake:
        fake.script = [(200, candidate(poisoned)), (200, candidate(surrogate)),
                       (200, candidate(quiz_json(2)))]
        result = gemini(fake.url).generate(request(2))
        assert result.provenance["attempts"] == 3
        feedback = [r["contents"][-1]["parts"][0]["text"] for r in fake.requests[1:]]
        assert "question 1 holds text that cannot be stored (options[0].text: Text " \
            "must not contain the NUL character (U+0000))" in feedback[0]
        assert "the JSON is not valid" in feedback[1]
    with fake_gemini() as fake:
        fake.script = [(200, candidate(poisoned))]
        with pytest.raises(GenerationError) as error:
            gemini(fake.url).generate(request(2))
        assert "cannot be stored" in error.value.reason and len(fake.requests) == 3


def test_gemini_truncated_output_fails_after_bounded_retries() -> None:
    with fake_gemini() as fake:
        fake.script = [(200, candidate(quiz_json(3)[:-40], finish="MAX_TOKENS"))]
        with pytest.raises(GenerationError) as error:
            gemini(fake.url).generate(request(3))
        assert "incomplete" in error.value.reason
        assert len(fake.requests) == 3 and error.value.provenance["attempts"] == 3


def test_gemini_server_errors_are_retried_and_client_errors_are_not() -> None:
    with fake_gemini() as fake:
        fake.script = [(500, ERROR_500), (200, candidate(quiz_json(2)))]
        assert len(gemini(fake.url).generate(request(2)).questions) == 2
    with fake_gemini() as fake:
        fake.script = [(400, ERROR_400)]
        with pytest.raises(GenerationError) as error:
            gemini(fake.url).generate(request(2))
        assert "400" in error.value.reason and len(fake.requests) == 1


def test_gemini_web_search_uses_grounding_and_parses_fenced_json() -> None:
    with fake_gemini() as fake:
        fake.script = [(200, candidate("Here you go:\n```json\n" + quiz_json(2) + "\n```"))]
        result = gemini(fake.url).generate(request(2, kind="WEB_SEARCH"))
        assert len(result.questions) == 2
        assert any("googleSearch" in tool for tool in fake.requests[0]["tools"])


def _wait_status(c: httpx.Client, user: User, accepted: httpx.Response,
                 timeout: float = 20) -> dict:
    headers = {**user.headers, "X-Position": accepted.headers["X-Position"]}
    deadline = time.monotonic() + timeout
    while True:
        body = c.get(f"/api/quiz/quizzes/{accepted.json()['id']}/", headers=headers).json()
        if body["status"] != "generating" or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.1)


def test_generation_through_the_whole_stack_with_gemini(
    smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    # A database of its own, so no other server's worker answers these requests.
    with new_database() as database_url, fake_gemini() as fake:
        fake.script = [(200, candidate(quiz_json(4)))]
        settings = make_settings(database_url, smtp[1], tmp_path, gemini_api_key="k",
                                 gemini_base_url=fake.url, gemini_model="gemini-test")
        with running_server(settings) as s, s.client() as c:
            from domain.roles import Role

            email = unique_email("trainer")
            s.container.accounts.create_administrator(email, "Gen", "correct horse battery",
                                                      Role.ADMIN)
            author = login(c, email, "correct horse battery")
            r = c.post("/api/quiz/quizzes/generate/", headers=author.headers, json={
                "title": "Joins", "prompt": "SQL joins", "num_questions": 4, "track": "DP"})
            assert r.status_code == 202 and r.json()["status"] == "generating"
            quiz = _wait_status(c, author, r)
            assert quiz["status"] == "draft" and len(quiz["questions"]) == 4
            assert quiz["provenance"]["generator"] == "gemini"
            assert quiz["provenance"]["model"] == "gemini-test"
            fake.script = [(400, ERROR_400)]
            r = c.post("/api/quiz/quizzes/generate/", headers=author.headers, json={
                "title": "Broken", "prompt": "x", "num_questions": 2})
            failed = _wait_status(c, author, r)
            assert failed["status"] == "failed"
            assert "400" in failed["failure_reason"]
            assert json.dumps(failed["provenance"])  # recorded, even on failure
