"""Answering a command with the state it produced (read-your-writes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from interfaces.http.middleware import extend_deadline
from interfaces.http.schemas import AcceptedOut
from projections.base import ReadModel


@dataclass(frozen=True)
class Settling:
    """A command's answer once `view` includes `position`: the endpoint returns this from
    its thread, and the wait happens on the event loop (routing.one_trip), so a lagging
    or stopped projector holds no thread that other commands need."""

    view: ReadModel
    position: int
    read: Callable[[], BaseModel]
    status_code: int = 200

    async def respond(self) -> JSONResponse:
        # The command is already stored: if the model can't catch up in time the answer
        # is 202 with the position to read at, never an error that invites a blind retry.
        headers = {"X-Position": str(self.position)}
        extend_deadline(self.view.request_wait_seconds + 1)
        if not await self.view.includes(self.position):
            accepted = AcceptedOut(detail="Accepted; the read model is catching up",
                                   position=self.position)
            return JSONResponse(accepted.model_dump(mode="json"), status_code=202,
                                headers=headers)
        body = await asyncio.to_thread(lambda: self.read().model_dump(mode="json"))
        return JSONResponse(body, status_code=self.status_code, headers=headers)


def answer_after(view: ReadModel, position: int, read: Callable[[], BaseModel],
                 status_code: int = 200) -> Settling:
    """The read model's view once it includes `position`, with X-Position."""
    return Settling(view, position, read, status_code)
