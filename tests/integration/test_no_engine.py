"""Without a Docker engine: one clear line for operators, one clear reason for students."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from tests.conftest import Mailbox, make_settings, new_database, register_student, running_server


def test_without_an_engine_students_get_a_clear_reason_and_the_log_one_line(
        smtp: tuple[Mailbox, int], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="apranova")
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path,
                                 docker_host=f"unix://{tmp_path}/no-engine.sock",
                                 workspace_supervise_every_seconds=0.1)
        with running_server(settings) as s, s.client() as c:
            student = register_student(c)
            r = c.post("/api/users/workspace/create/", headers=student.headers)
            assert r.status_code == 202, r.text
            deadline = time.monotonic() + 20
            while (status := c.get("/api/users/workspace/status/", headers=student.headers
                                   ).json())["state"] != "failed":
                assert time.monotonic() < deadline, status
                time.sleep(0.1)
            assert status["reason"] == "engine_unavailable"
            assert status["detail"] == "Workspaces are unavailable right now; try again later"
            time.sleep(2)  # the supervisor's rounds go on meanwhile
            # This server's supervisor: other servers of the test process log too.
            [supervisor] = [c for c in s.background.components
                            if getattr(c, "name", None) == "workspace-supervisor"]
            ident = supervisor._thread.ident
    said = [r for r in caplog.records
            if "workspace engine unavailable" in r.getMessage() and r.thread == ident]
    assert len(said) == 1 and said[0].exc_info is None
    assert not [r for r in caplog.records
                if r.name == "apranova" and "workspace-supervisor" in r.getMessage()]
