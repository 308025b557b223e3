"""The offline quiz generator: draws from the question bank shipped in data/."""

from __future__ import annotations

import random
import re
import tomllib
from pathlib import Path
from typing import Any

from application.ports import GeneratedQuestions, GenerationError, QuizRequest

GENERATOR_VERSION = "apranova-offline/1"


# Words that say nothing about a topic ("SQL and Python" is about SQL and Python).
STOP_WORDS = frozenset({
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "for", "from", "how", "in",
    "into", "is", "it", "its", "of", "on", "or", "over", "quiz", "test", "the", "their",
    "this", "to", "use", "using", "what", "when", "which", "with", "write", "your", "basics",
    "basic", "intro", "introduction", "questions", "question", "fundamentals",
})


def meaningful(text: str) -> set[str]:
    """The words of a prompt or title that can tell topics apart."""
    return {w for w in re.findall(r"[a-z0-9+#.]+", text.lower())
            if w not in STOP_WORDS and (len(w) > 1 or w in {"c", "r"})}


class QuestionBankGenerator:
    def __init__(self, path: Path) -> None:
        with path.open("rb") as f:
            data = tomllib.load(f)
        self.version = data.get("version", 1)
        self.topics: list[dict[str, Any]] = data["topics"]

    def generate(self, request: QuizRequest) -> GeneratedQuestions:
        words = meaningful(f"{request.title} {request.prompt}")
        candidates = [t for t in self.topics
                      if request.track is None or t["track"] == request.track]

        def relevance(topic: dict[str, Any]) -> int:
            keywords = {k.lower() for k in topic["keywords"]}
            title_words = meaningful(topic["title"])
            return len(words & keywords) * 2 + len(words & title_words)

        rng = random.Random(str(request.quiz_id))
        ranked = sorted(candidates, key=lambda t: (-relevance(t), rng.random()))
        relevant = [t for t in ranked if relevance(t) > 0] or ranked
        chosen = self._draw(relevant, request.num_questions, rng)
        if len(chosen) < request.num_questions:
            chosen += self._draw([t for t in ranked if t not in relevant],
                                 request.num_questions - len(chosen), rng)
        provenance = {
            "generator": "offline-question-bank", "generator_version": GENERATOR_VERSION,
            "model": None, "bank_version": self.version, "prompt": request.prompt,
            "topics": sorted({slug for slug, _ in chosen}),
        }
        if len(chosen) < request.num_questions:
            raise GenerationError(
                f"the question bank has only {len(chosen)} questions for this request "
                f"({request.num_questions} asked)", provenance)
        return GeneratedQuestions([q for _, q in chosen], provenance)

    @staticmethod
    def _draw(topics: list[dict[str, Any]], count: int, rng: random.Random
              ) -> list[tuple[str, dict[str, Any]]]:
        """Round-robin over the topics, most relevant first, questions shuffled per topic."""
        pools = []
        for topic in topics:
            questions = list(topic["questions"])
            rng.shuffle(questions)
            pools.append((topic["slug"], questions))
        drawn: list[tuple[str, dict[str, Any]]] = []
        while len(drawn) < count and any(pool for _, pool in pools):
            for slug, pool in pools:
                if pool and len(drawn) < count:
                    q = pool.pop()
                    drawn.append((slug, {
                        "text": q["text"], "type": q["type"],
                        "explanation": q.get("explanation", ""),
                        "options": [{"text": o["text"], "correct": o["correct"]}
                                    for o in q["options"]],
                    }))
        return drawn
