"""Answering a command with the state it produced (read-your-writes)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from interfaces.http.schemas import AcceptedOut
from projections.base import ProjectionLagging, ReadModel


def answer_after(view: ReadModel, position: int, read: Callable[[], BaseModel],
                 wait_seconds: float, status_code: int = 200) -> JSONResponse:
    """The read model's view once it includes `position`, with X-Position.

    The command is already stored: if the model can't catch up in time the answer is
    202 with the position to read at, never an error that invites a blind retry.
    """
    headers = {"X-Position": str(position)}
    try:
        view.wait_for(position, wait_seconds)
    except ProjectionLagging:
        accepted = AcceptedOut(detail="Accepted; the read model is catching up",
                               position=position)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202,
                            headers=headers)
    return JSONResponse(read().model_dump(mode="json"), status_code=status_code,
                        headers=headers)
