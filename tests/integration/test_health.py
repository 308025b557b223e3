"""Liveness, readiness (real dependencies) and metrics."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.conftest import Mailbox, free_port, make_settings, register_student, running_server


def test_livez_and_readyz(client: httpx.Client) -> None:
    assert client.get("/livez").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"postgres": "ok", "redis": "ok", "read_models": "ok"}
    assert r.json()["status"] == "ok" and r.json()["stalled"] == []


def test_readyz_reports_an_unreachable_redis(
    database_url: str, smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    settings = make_settings(database_url, smtp[1], tmp_path,
                             redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with running_server(settings, background=False) as s, s.client() as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert body["error"]["details"]["postgres"] == "ok"
        assert body["error"]["details"]["redis"].startswith("unavailable")
        # Login needs Redis for rate limiting: a clear 503, not a 500.
        r = c.post("/api/auth/login/", json={"email": "a@example.com", "password": "x" * 12})
        assert r.status_code == 503 and r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"


def test_metrics_count_requests_by_route_template(client: httpx.Client) -> None:
    client.get("/api/users/00000000-0000-4000-8000-000000000000/")
    text = client.get("/metrics").text
    assert "apranova_http_requests_total" in text
    assert 'route="/api/users/{user_id}/"' in text
    assert "apranova_http_request_duration_seconds_bucket" in text


def test_openapi_documents_the_api(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/auth/register/", "/api/auth/login/", "/api/auth/token/refresh/",
                 "/api/auth/logout/", "/api/users/profile/", "/api/users/assign-trainer/"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_every_operation_documents_its_errors_with_the_envelope(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    envelope = "#/components/schemas/ErrorOut"
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for code in ("400", "404", "422", "503"):
                schema = responses[code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": envelope}, (method, path, code)
            if any("HTTPBearer" in s for s in operation.get("security", [])):
                assert {"401", "403"} <= set(responses), (method, path)
    assert "429" in spec["paths"]["/api/auth/login/"]["post"]["responses"]
    assert "202" in spec["paths"]["/api/users/profile/"]["put"]["responses"]


def test_text_parameters_are_documented_as_the_api_takes_them(client: httpx.Client) -> None:
    """A NUL in a query string or path is refused with a 400 before any route, so the
    document says so of every text parameter there: a client (or a fuzzer) reading it
    does not take a NUL for valid data."""
    spec = client.get("/openapi.json").json()
    texts = [(path, p["name"], p["schema"]) for path, operations in spec["paths"].items()
             for operation in operations.values() for p in operation.get("parameters", [])
             if p["in"] in ("query", "path") and p["schema"].get("type") == "string"]
    assert ("/api/events/", "types") in {(path, name) for path, name, _ in texts}
    for path, name, schema in texts:
        assert "pattern" in schema or "format" in schema or "enum" in schema, (path, name)
        if "pattern" in schema:
            assert not re.search(schema["pattern"], "a\x00b"), (path, name)
    r = client.get("/api/events/", params={"types": "apranova.quiz.Published\x00"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("value", ["+0.0", "null", "-1", "1e3", "1.0", "0x10", "9" * 40])
def test_x_position_is_a_non_negative_integer_or_a_clear_422(
    client: httpx.Client, value: str,
) -> None:
    student = register_student(client)
    r = client.get("/api/users/profile/", headers={**student.headers, "X-Position": value})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "VALIDATION_ERROR"
    assert "header.x-position" in r.json()["error"]["details"]
    ok = client.get("/api/users/profile/", headers={**student.headers, "X-Position": "0"})
    assert ok.status_code == 200


def test_webhook_paths_answer_405_to_other_methods(client: httpx.Client) -> None:
    for path in ("/api/payments/webhook/", "/api/github/webhook/"):
        r = client.get(path)
        assert r.status_code == 405 and r.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert "POST" in r.headers["allow"]


def test_the_api_docs_need_no_network(client: httpx.Client) -> None:
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets and all(a.startswith("/") for a in assets), assets
        for asset in assets:
            if asset != "/openapi.json":
                assert client.get(asset).status_code == 200, asset
