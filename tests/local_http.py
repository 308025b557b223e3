"""Local HTTP servers standing in for third parties (Gemini, Stripe, Slack, an OpenID
issuer's discovery document), all on pytest-httpserver, on the loopback only."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

ANY_PATH = re.compile(".*")


@contextmanager
def serve(method: str, handler: Callable[[Request], Response]) -> Iterator[str]:
    """Answer every `method` request on a free loopback port with `handler`; yields the
    base URL. Threaded, as the real services are: clients call them concurrently."""
    with HTTPServer(host="127.0.0.1", threaded=True) as server:
        server.expect_request(ANY_PATH, method=method).respond_with_handler(handler)
        yield server.url_for("").rstrip("/")


def reply(status: int, payload: object, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(payload), status=status, headers=headers,
                    content_type="application/json")
