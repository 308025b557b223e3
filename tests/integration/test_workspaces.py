"""Workspaces on a real Docker engine that the tests start themselves.

The engine (Debian's docker.io, vfs storage, no bridge) and a busybox image whose httpd
stands in for code-server/Superset are made by tests/docker/*.sh. If the engine can't
start, these tests fail; they never skip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import docker
import httpx
import pytest

from domain.roles import Role
from domain.workspaces import Workspace
from tests.conftest import (
    REDIS_URL,
    SECRETS_ENV,
    Mailbox,
    Server,
    User,
    make_settings,
    make_staff,
    new_database,
    register_student,
    running_server,
)

pytestmark = pytest.mark.long

ENGINE_DIR = Path(os.environ.get("APRANOVA_TEST_ENGINE_DIR", "/tmp/apranova-engine"))
SCRIPTS = Path(__file__).resolve().parent.parent / "docker"
IMAGE = "apranova/test-workspace:latest"
HTTPD = ["httpd", "-f", "-v", "-p", "127.0.0.1:{port}", "-h", "/workspace"]


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    # A suite stops what it started: an engine that was already running is left running.
    was_running = subprocess.run(["bash", str(SCRIPTS / "engine.sh"), str(ENGINE_DIR),
                                  "status"], capture_output=True, timeout=60).returncode == 0
    started = subprocess.run(["bash", str(SCRIPTS / "engine.sh"), str(ENGINE_DIR), "start"],
                             capture_output=True, text=True, timeout=600)
    if started.returncode != 0:
        pytest.fail(f"the Docker engine did not start:\n{started.stderr}", pytrace=False)
    socket = f"unix://{ENGINE_DIR}/docker.sock"
    image = subprocess.run(["bash", str(SCRIPTS / "make-image.sh"), socket, IMAGE],
                           capture_output=True, text=True, timeout=300)
    if image.returncode != 0:
        pytest.fail(f"the test image could not be built:\n{image.stderr}", pytrace=False)
    yield socket
    client = docker.DockerClient(base_url=socket)
    for c in client.containers.list(all=True, filters={"label": "apranova.workspace"}):
        c.remove(force=True)
    client.close()
    if not was_running:
        stopped = subprocess.run(["bash", str(SCRIPTS / "engine.sh"), str(ENGINE_DIR), "stop"],
                                 capture_output=True, text=True, timeout=120)
        assert stopped.returncode == 0, stopped.stderr


def workspace_settings(engine: str, **extra: Any) -> dict[str, Any]:
    return {"docker_host": engine, "workspace_image_dp": IMAGE, "workspace_image_fsd": IMAGE,
            "workspace_network_mode": "host", "workspace_command": HTTPD,
            "workspace_read_only": True, "workspace_memory": "256m", "workspace_cpus": 0.5,
            "workspace_pids": 128, "workspace_start_timeout_seconds": 15,
            "workspace_supervise_every_seconds": 0.5, **extra}


@pytest.fixture(scope="module")
def ws(engine: str, smtp: tuple[Mailbox, int], tmp_path_factory: pytest.TempPathFactory
       ) -> Iterator[tuple[Server, docker.DockerClient]]:
    with new_database() as url:
        settings = make_settings(url, smtp[1], tmp_path_factory.mktemp("ws"),
                                 **workspace_settings(engine))
        with running_server(settings) as server:
            client = docker.DockerClient(base_url=engine)
            yield server, client
            client.close()


@pytest.fixture
def c(ws: tuple[Server, docker.DockerClient]) -> Iterator[httpx.Client]:
    with ws[0].client() as client:
        yield client


def wait_state(c: httpx.Client, user: User, *states: str, timeout: float = 30
               ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = c.get("/api/users/workspace/status/", headers=user.headers).json()
        if body.get("state") in states:
            return dict(body)
        assert time.monotonic() < deadline, f"still {body.get('state')}: {body}"
        time.sleep(0.1)


def containers_of(client: docker.DockerClient, user: User) -> list[Any]:
    return client.containers.list(all=True, filters={"label": f"apranova.student={user.id}"})


def launch(c: httpx.Client, user: User) -> httpx.Response:
    return c.post("/api/users/workspace/create/", headers=user.headers)


def test_launch_reports_progress_and_runs_a_hardened_container(
    ws: tuple[Server, docker.DockerClient], c: httpx.Client,
) -> None:
    client = ws[1]
    student, other = register_student(c, track="FSD"), register_student(c, track="DP")
    r = launch(c, student)
    assert r.status_code == 202 and r.json()["state"] == "requested"
    seen = []
    with c.stream("GET", "/api/users/workspace/progress/", headers=student.headers,
                  params={"timeout": 30}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["state"])
    assert seen[-1] == "running"
    assert seen == [s for s in ("requested", "provisioning", "running") if s in seen]
    [container] = containers_of(client, student)
    attrs = container.attrs
    host = attrs["HostConfig"]
    assert attrs["Config"]["User"] == "1000:1000"
    assert host["CapDrop"] == ["ALL"]
    assert any("no-new-privileges" in opt for opt in host["SecurityOpt"])
    assert host["PidsLimit"] == 128 and host["Memory"] == 256 * 1024 * 1024
    assert host["NanoCpus"] == 500_000_000 and host["ReadonlyRootfs"] is True
    assert not any("docker.sock" in (m.get("Source") or "") for m in attrs["Mounts"])
    assert [m["Destination"] for m in attrs["Mounts"]] == ["/workspace"]
    assert host["NetworkMode"] == "host" and "127.0.0.1:" in " ".join(attrs["Config"]["Cmd"])
    assert "--auth" not in " ".join(attrs["Config"]["Cmd"])
    env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
    link = c.get("/api/users/workspace/url/", headers=student.headers).json()
    assert env["PASSWORD"] == link["password"] and len(link["password"]) >= 20
    container.exec_run(["sh", "-c", "echo hello > /workspace/hello.txt"], user="1000:1000")
    assert httpx.get(link["url"] + "hello.txt").text.strip() == "hello"
    # Another student gets another password; a second launch is the same container.
    launch(c, other)
    wait_state(c, other, "running")
    assert c.get("/api/users/workspace/url/", headers=other.headers).json()["password"] \
        != link["password"]
    assert launch(c, student).status_code == 200
    assert len(containers_of(client, student)) == 1


def test_the_volume_survives_stop_and_start(
    ws: tuple[Server, docker.DockerClient], c: httpx.Client,
) -> None:
    client = ws[1]
    student = register_student(c)
    launch(c, student)
    wait_state(c, student, "running")
    [container] = containers_of(client, student)
    container.exec_run(["sh", "-c", "echo kept > /workspace/notes.txt"], user="1000:1000")
    r = c.delete("/api/users/workspace/stop/", headers=student.headers)
    assert r.status_code == 202
    stopped = wait_state(c, student, "stopped")
    assert stopped["reason"] == "user"
    assert containers_of(client, student)[0].status == "exited"
    r = c.get("/api/users/workspace/url/", headers=student.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "WORKSPACE_NOT_RUNNING"
    launch(c, student)
    wait_state(c, student, "running")
    link = c.get("/api/users/workspace/url/", headers=student.headers).json()
    assert httpx.get(link["url"] + "notes.txt").text.strip() == "kept"
    assert len(containers_of(client, student)) == 1


def test_erasing_a_student_removes_their_workspace_and_its_volume(
    ws: tuple[Server, docker.DockerClient], c: httpx.Client,
) -> None:
    server, client = ws
    student = register_student(c)
    launch(c, student)
    wait_state(c, student, "running")
    [container] = containers_of(client, student)
    container.exec_run(["sh", "-c", "echo mine > /workspace/notes.txt"], user="1000:1000")
    volume = f"apranova-ws-{student.id}-data"
    assert client.volumes.get(volume)
    root = make_staff(server, c, Role.SUPERADMIN)
    r = c.post(f"/api/users/{student.id}/erase/", headers=root.headers,
               json={"reason": "erasure request"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30  # the worker's workspace_erase policy does it
    while containers_of(client, student) or volume in [v.name for v in client.volumes.list()]:
        assert time.monotonic() < deadline, "the workspace or its volume is still there"
        time.sleep(0.2)
    state = server.container.store.load(Workspace, Workspace.id_for(UUID(student.id))).state
    assert state == "stopped"


def test_idle_and_too_old_workspaces_are_culled(
    ws: tuple[Server, docker.DockerClient], c: httpx.Client,
) -> None:
    server, client = ws
    idle, old = register_student(c), register_student(c)
    for s in (idle, old):
        launch(c, s)
        wait_state(c, s, "running")
    commands = server.container.workspaces
    ids = [Workspace.id_for(UUID(idle.id))]
    policy = commands.policy
    now = server.container.quizzes.clock.now()
    assert commands.cull(ids, now=now) == []  # fresh: nothing to do
    later = now + policy.idle_timeout + timedelta(seconds=1)
    assert commands.cull(ids, now=later) == ids
    assert wait_state(c, idle, "stopped")["reason"] == "idle_timeout"
    much_later = now + policy.max_age + timedelta(seconds=1)
    commands.cull([Workspace.id_for(UUID(old.id))], now=much_later)
    assert wait_state(c, old, "stopped")["reason"] == "max_age"
    assert all(ct.status == "exited" for s in (idle, old) for ct in containers_of(client, s))


def test_the_reconciler_records_a_container_that_vanished(
    ws: tuple[Server, docker.DockerClient], c: httpx.Client,
) -> None:
    client = ws[1]
    student = register_student(c)
    launch(c, student)
    wait_state(c, student, "running")
    containers_of(client, student)[0].remove(force=True)
    ended = wait_state(c, student, "failed", "stopped")
    # `docker rm -f` kills, then removes: a reconciler looking in between sees a
    # container that exited, and records that (rarely, but seen).
    assert (ended["state"], ended["reason"]) in {("failed", "vanished"),
                                                 ("stopped", "engine_exited")}
    assert containers_of(client, student) == []


def test_admins_see_and_stop_any_workspace(
    ws: tuple[Server, docker.DockerClient], c: httpx.Client,
) -> None:
    server = ws[0]
    student, other = register_student(c), register_student(c)
    admin = make_staff(server, c, Role.ADMIN)
    launch(c, student)
    wait_state(c, student, "running")
    assert c.get("/api/workspaces/", headers=student.headers).status_code == 403
    assert c.post(f"/api/workspaces/{student.id}/stop/",
                  headers=other.headers).status_code == 403
    listed = c.get("/api/workspaces/", headers=admin.headers, params={"state": "running"})
    assert student.id in {w["student_id"] for w in listed.json()["results"]}
    r = c.post(f"/api/workspaces/{student.id}/stop/", headers=admin.headers)
    assert r.status_code == 202
    assert wait_state(c, student, "stopped")["reason"] == "admin"
    assert c.get("/api/users/workspace/status/", headers=other.headers).status_code == 404
    trainer = make_staff(server, c, Role.TRAINER)
    assert launch(c, trainer).status_code == 403


def test_recovery_after_the_worker_dies_mid_provisioning(
    engine: str, smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    slow = ["sh", "-c", "sleep 3; exec httpd -f -p 127.0.0.1:{port} -h /workspace"]
    with new_database() as url:
        extra = workspace_settings(engine, workspace_command=slow,
                                   workspace_start_timeout_seconds=8)
        settings = make_settings(url, smtp[1], tmp_path, **extra)
        env = {k: v for k, v in os.environ.items() if not k.startswith("APRANOVA_")}
        env.update({"APRANOVA_DATABASE_URL": url, "APRANOVA_REDIS_URL": REDIS_URL,
                    **SECRETS_ENV, "APRANOVA_DATA_DIR": str(tmp_path),
                    "APRANOVA_REDIS_NAMESPACE": settings.redis_namespace,
                    "APRANOVA_HEARTBEAT_FILE": str(tmp_path / "hb")})
        env.update({f"APRANOVA_{k.upper()}": json.dumps(v) if isinstance(v, list) else str(v)
                    for k, v in extra.items()})

        def worker() -> subprocess.Popen[bytes]:
            return subprocess.Popen([sys.executable, "-m", "interfaces.cli", "worker"], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        with running_server(settings, background=False) as server, server.client() as c:
            server.background.start_projections()
            server.background.start_relay()
            client = docker.DockerClient(base_url=engine)
            student = register_student(c)
            first = worker()
            try:
                launch(c, student)
                wait_state(c, student, "provisioning")
                deadline = time.monotonic() + 10
                # Started, not only created: killed between create and start, the worker
                # would leave a container the reconciler rightly gives up on (seen in CI).
                while [ct.status for ct in containers_of(client, student)] != ["running"]:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                first.send_signal(signal.SIGKILL)  # dies between starting and recording
                first.wait(timeout=10)
                time.sleep(1)
                assert c.get("/api/users/workspace/status/",
                             headers=student.headers).json()["state"] == "provisioning"
                second = worker()
                try:
                    state = wait_state(c, student, "running", "failed", timeout=40)
                    assert state["state"] == "running", state
                    assert len(containers_of(client, student)) == 1
                finally:
                    second.send_signal(signal.SIGTERM)
                    second.wait(timeout=30)
            finally:
                if first.poll() is None:
                    first.kill()
                client.close()
