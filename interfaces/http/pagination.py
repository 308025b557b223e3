"""Page parameters and the {count, next, previous, results} list shape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Query, Request
from pydantic import BaseModel

T = TypeVar("T")
MAX_PAGE_SIZE = 100


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


@dataclass(frozen=True)
class PageParams:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


async def page_params(
    page: int = Query(1, ge=1, le=1_000_000),
    page_size: int = Query(20, ge=1, le=MAX_PAGE_SIZE),
) -> PageParams:
    return PageParams(page, page_size)


def paginate(
    request: Request, params: PageParams, count: int, results: list[Any]
) -> dict[str, Any]:
    def link(page: int) -> str:
        return str(request.url.include_query_params(page=page, page_size=params.page_size))

    has_next = params.offset + len(results) < count
    return {
        "count": count,
        "next": link(params.page + 1) if has_next else None,
        "previous": link(params.page - 1) if params.page > 1 else None,
        "results": results,
    }
