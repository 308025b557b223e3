"""Quiz generation with Gemini through google-genai, with structured JSON output.

The model's output is parsed with pydantic and checked with the domain's question
rules; invalid or truncated output is sent back with a correction prompt, a bounded
number of times. Every outcome carries provenance: model, prompt, generator version.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from google import genai
    from google.genai import types

from application.ports import GeneratedQuestions, GenerationError, QuizRequest
from domain.quizzes import MAX_OPTIONS, MIN_OPTIONS, question_problems

log = logging.getLogger("apranova.gemini")
GENERATOR_VERSION = "apranova-gemini/1"
TRACK_NAMES = {"DP": "Data Professional", "FSD": "Full-Stack Development"}


class OptionOut(BaseModel):
    text: str
    correct: bool


class QuestionOut(BaseModel):
    text: str
    type: Literal["SINGLE", "MULTIPLE"]
    explanation: str
    options: list[OptionOut]


class QuizOut(BaseModel):
    questions: list[QuestionOut]


def build_prompt(request: QuizRequest) -> str:
    audience = (f"students of the {TRACK_NAMES.get(request.track, request.track)} track"
                if request.track else "students of a technical bootcamp")
    return (
        f"Write a multiple-choice quiz titled {request.title!r} for {audience}.\n"
        f"Trainer's brief: {request.prompt}\n\n"
        f"Rules: exactly {request.num_questions} questions; each has {MIN_OPTIONS} to "
        f"{MAX_OPTIONS} distinct options; type SINGLE has exactly one correct option; type "
        "MULTIPLE has at least two correct options and at least one incorrect; no two "
        "questions alike; no 'all of the above' or 'none of the above'; a one-sentence "
        "explanation of the right answer for each question.\n"
        'Answer with JSON only: {"questions": [{"text", "type", "explanation", '
        '"options": [{"text", "correct"}]}]}'
    )


def _json_text(text: str) -> str:
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


class GeminiGenerator:
    """Every process is wired with the generator, but only the workers generate: the SDK
    (about 20 MB a process) is loaded on the first quiz, not at start."""

    def __init__(self, api_key: str, model: str, base_url: str | None = None,
                 max_attempts: int = 3, timeout_seconds: float = 60.0) -> None:
        self._api_key, self._base_url, self._timeout = api_key, base_url, timeout_seconds
        self._client: genai.Client | None = None
        self._lock = threading.Lock()
        self.model = model
        self.max_attempts = max_attempts

    @property
    def client(self) -> genai.Client:
        with self._lock:
            if self._client is None:
                from google import genai
                from google.genai import types

                options = types.HttpOptions(
                    base_url=self._base_url, timeout=int(self._timeout * 1000),
                    # Retries are ours: they include a correction prompt, the SDK's would not.
                    retry_options=types.HttpRetryOptions(attempts=1))
                self._client = genai.Client(api_key=self._api_key, http_options=options)
            return self._client

    def generate(self, request: QuizRequest) -> GeneratedQuestions:
        from google.genai import errors, types

        prompt = build_prompt(request)
        provenance: dict[str, Any] = {
            "generator": "gemini", "generator_version": GENERATOR_VERSION,
            "model": self.model, "prompt": prompt, "sdk": f"google-genai {version('google-genai')}",
            "generation_type": request.generation_type,
        }
        contents = [types.Content(role="user", parts=[types.Part(text=prompt)])]
        problems: list[str] = []
        for attempt in range(1, self.max_attempts + 1):
            provenance["attempts"] = attempt
            try:
                response = self.client.models.generate_content(
                    model=self.model, contents=contents, config=self._config(request))
            except errors.APIError as error:
                problems = [f"the model service answered {error.code}: {error.message}"]
                if error.code in (429, 500, 502, 503, 504) and attempt < self.max_attempts:
                    time.sleep(min(2 ** attempt * 0.25, 4))
                    continue
                break
            text = response.text or ""
            problems = self._problems(text, request.num_questions)
            if not problems:
                questions = QuizOut.model_validate_json(_json_text(text)).questions
                return GeneratedQuestions([q.model_dump() for q in questions], provenance)
            log.info("gemini output invalid (attempt %d): %s", attempt, problems)
            contents += [
                types.Content(role="model", parts=[types.Part(text=text[:20_000])]),
                types.Content(role="user", parts=[types.Part(text=(
                    "That output is not acceptable: " + "; ".join(problems)
                    + ". Reply again with the complete corrected JSON only."))]),
            ]
        raise GenerationError("; ".join(problems) or "no usable output", provenance)

    def _config(self, request: QuizRequest) -> types.GenerateContentConfig:
        from google.genai import types

        if request.generation_type == "WEB_SEARCH":
            # Grounding with search can't be combined with a response schema.
            return types.GenerateContentConfig(
                tools=[types.Tool(google_search=types.GoogleSearch())], temperature=0.4)
        return types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=QuizOut, temperature=0.4)

    @staticmethod
    def _problems(text: str, expected: int) -> list[str]:
        try:
            parsed = QuizOut.model_validate_json(_json_text(text))
        except ValidationError as error:
            if "EOF" in str(error):
                return ["the JSON is incomplete (cut off)"]
            first = error.errors()[0]
            if first["type"] == "json_invalid":  # a lone surrogate's escape lands here too
                return [f"the JSON is not valid: {first['msg']}"]
            return ["the JSON does not match the schema"]
        return question_problems(
            [q.model_dump() for q in parsed.questions], expected)


