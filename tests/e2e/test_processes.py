"""The production split: API (two worker processes), projector, relay and worker as
separate processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    PASSWORD,
    REDIS_URL,
    SECRETS_ENV,
    Mailbox,
    free_port,
    new_database,
    unique_email,
    wait_until_ready,
)

pytestmark = [pytest.mark.e2e, pytest.mark.long]

APRANOVA = [sys.executable, "-m", "interfaces.cli"]


@pytest.fixture
def deployment(
    smtp: tuple[Mailbox, int], tmp_path: Path,
) -> Iterator[tuple[str, dict[str, Path]]]:
    with new_database() as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APRANOVA_")}
        port = free_port()
        env.update({
            "APRANOVA_DATABASE_URL": database_url, "APRANOVA_REDIS_URL": REDIS_URL,
            **SECRETS_ENV, "APRANOVA_SMTP_HOST": "127.0.0.1",
            "APRANOVA_SMTP_PORT": str(smtp[1]), "APRANOVA_DATA_DIR": str(tmp_path),
            "APRANOVA_REDIS_NAMESPACE": f"split-{port}",
        })
        roles = {"api": ["serve", "--port", str(port), "--no-background", "--workers", "2"],
                 "projector": ["projections", "run"], "relay": ["relay"], "worker": ["worker"]}
        heartbeats: dict[str, Path] = {}
        processes: list[subprocess.Popen[bytes]] = []
        for name, args in roles.items():
            heartbeats[name] = tmp_path / f"{name}.heartbeat"
            log = (tmp_path / f"{name}.log").open("w")
            processes.append(subprocess.Popen(
                [*APRANOVA, *args], stdout=log, stderr=subprocess.STDOUT,
                env={**env, "APRANOVA_HEARTBEAT_FILE": str(heartbeats[name])}))
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(url, tmp_path / "api.log")
            yield url, heartbeats
        finally:
            for p in processes:
                p.send_signal(signal.SIGTERM)
            for p in processes:
                try:
                    assert p.wait(timeout=30) == 0, p.args
                except subprocess.TimeoutExpired:
                    p.kill()
                    raise


def test_separate_processes_cooperate_through_the_log(
    deployment: tuple[str, dict[str, Path]], mailbox: Mailbox,
) -> None:
    url, heartbeats = deployment
    email = unique_email()
    with httpx.Client(base_url=url, timeout=30) as c:
        r = c.post("/api/auth/register/", json={
            "email": email, "password": PASSWORD, "name": "Split", "track": "DP"})
        assert r.status_code == 201
        position = r.headers["X-Position"]
        tokens = c.post("/api/auth/login/", json={"email": email, "password": PASSWORD}).json()
        # The projector process builds the read model the API process answers from.
        r = c.get("/api/users/profile/", headers={
            "Authorization": f"Bearer {tokens['access']}", "X-Position": position})
        assert r.status_code == 200 and r.json()["name"] == "Split"
        # Each request on a connection of its own, so both API workers serve some and
        # remember the session; a logout through one reaches the other in milliseconds
        # (announced over Redis), far sooner than the 30 s it may remember a session.
        bearer = {"Authorization": f"Bearer {tokens['access']}"}
        for _ in range(12):
            assert httpx.get(f"{url}/api/users/profile/", headers=bearer).status_code == 200
        assert c.post("/api/auth/logout/", headers=bearer,
                      json={"refresh": tokens["refresh"]}).status_code == 204
        revoked = time.monotonic()
        while httpx.get(f"{url}/api/users/profile/", headers=bearer).status_code != 401:
            assert time.monotonic() - revoked < 1.0, "a worker kept the revoked session"
        for _ in range(12):
            r = httpx.get(f"{url}/api/users/profile/", headers=bearer)
            assert r.status_code == 401 and r.json()["error"]["code"] == "TOKEN_REVOKED"
    # The relay process enqueues, the worker process sends.
    mailbox.wait_for(email, "Welcome to ApraNova", timeout=30)
    for name in ("projector", "relay", "worker"):
        deadline = time.monotonic() + 10
        while not heartbeats[name].exists():
            assert time.monotonic() < deadline, f"{name} never reported healthy"
            time.sleep(0.2)
        assert time.time() - heartbeats[name].stat().st_mtime < 5
