"""The routers' base: blocking endpoints run in the thread pool in one hop, not two.

FastAPI runs a plain `def` endpoint in the thread pool and then, when it has a response
model, validates the result in a second trip to the pool. A trip costs more CPU than
most reads here (measured: about 250 us each, against 120 us for a whole async request
without dependencies), so every blocking endpoint is wrapped in a coroutine that makes
the one trip itself; FastAPI then treats it as async and validates in the event loop.

The trip goes through the event loop's own executor (`asyncio.to_thread`; the app sets
its size), not anyio's worker threads, which cost more per trip: bench/endpoints.py
measured every endpoint it tried cheaper against the SELECT baseline that way.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter


def one_trip(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """The endpoint as a coroutine that runs it in the thread pool."""
    if inspect.iscoroutinefunction(endpoint) or inspect.isasyncgenfunction(endpoint):
        return endpoint

    @functools.wraps(endpoint)  # FastAPI reads parameters through __wrapped__
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(endpoint, *args, **kwargs)

    return run


class Router(APIRouter):
    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, one_trip(endpoint), **kwargs)
