"""The answer cache: an answer is kept while the read models it comes from stay put."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from projections.answers import AnswerCache
from projections.base import ReadModel


@dataclass
class Board:
    at: dict[str, int] = field(default_factory=dict)
    listening: bool = True

    def heard(self, model: str) -> int:
        return self.at.get(model, 0)


@dataclass
class View:
    board: Board
    position_key: str


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def views(board: Board, *names: str) -> list[ReadModel]:
    return [cast(ReadModel, View(board, name)) for name in names]


def counting(answers: list[bytes]) -> Any:
    made: list[int] = []

    def make() -> bytes:
        made.append(1)
        return answers[len(made) - 1]

    make.made = made  # type: ignore[attr-defined]
    return make


def test_an_answer_is_kept_until_one_of_its_models_moves() -> None:
    board = Board({"quizzes": 5, "users": 9})
    cache, read = AnswerCache(100), views(board, "quizzes", "users")
    make = counting([b"first", b"second", b"third"])
    assert cache.answer(read, "k", make) == b"first"
    assert cache.answer(read, "k", make) == b"first"
    board.at["users"] = 10  # a registration: the student's track may have changed
    assert cache.answer(read, "k", make) == b"second"
    assert cache.answer(read, "other", make) == b"third"
    assert (cache.hits, cache.misses) == (1, 3)


def test_without_announcements_or_past_the_ttl_every_read_asks_again() -> None:
    board, clock = Board({"quizzes": 1}, listening=False), Clock()
    cache, read = AnswerCache(100, ttl_seconds=30, clock=clock), views(board, "quizzes")
    make = counting([b"a", b"b", b"c", b"d"])
    assert [cache.answer(read, "k", make) for _ in range(2)] == [b"a", b"b"]
    board.listening = True
    assert [cache.answer(read, "k", make) for _ in range(2)] == [b"c", b"c"]
    clock.now += 31
    assert cache.answer(read, "k", make) == b"d"


def test_an_answer_made_while_its_model_moved_is_not_kept() -> None:
    board = Board({"quizzes": 1})
    cache, read = AnswerCache(100), views(board, "quizzes")

    def moving() -> bytes:
        board.at["quizzes"] += 1  # published while the page was read
        return b"maybe older than the stamp"

    assert cache.answer(read, "k", moving) == b"maybe older than the stamp"
    assert cache.answer(read, "k", lambda: b"fresh") == b"fresh"


def test_the_cache_is_bounded_in_bytes_and_zero_turns_it_off() -> None:
    board = Board({"quizzes": 1})
    cache, read = AnswerCache(2), views(board, "quizzes")  # two bytes: two answers here
    for key in ("a", "b", "c"):
        cache.answer(read, key, lambda key=key: key.encode())  # type: ignore[misc]
    assert cache.answer(read, "a", lambda: b"again") == b"again"  # the oldest went
    assert cache.answer(read, "big", lambda: b"too big") == b"too big"
    assert cache.answer(read, "big", lambda: b"never kept") == b"never kept"
    off = AnswerCache(0)
    make = counting([b"1", b"2"])
    assert [off.answer(read, "k", make) for _ in range(2)] == [b"1", b"2"]
