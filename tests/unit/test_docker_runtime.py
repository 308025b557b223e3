"""Which host port a workspace gets: behind a bridge the engine publishes the container's
port on one it chooses (read back from the container); on the host's network the
container binds the one picked for it. A stand-in for the docker SDK's client records
what the runtime asks of it."""

from __future__ import annotations

from typing import Any

import pytest
from docker.errors import NotFound

from application.ports import EngineUnavailable, WorkspaceSpec
from infrastructure.docker_runtime import PORT_LABEL, DockerRuntime, Hardening

SPEC = WorkspaceSpec(name="ws-1", image="img", volume="vol-1", password="pw",
                     labels={}, container_port=8088)


class Container:
    def __init__(self, options: dict[str, Any], published: str | None) -> None:
        self.id, self.status = "c1", "running"
        self.labels = options["labels"]
        self.options = options
        self.attrs: dict[str, Any] = {"NetworkSettings": {"Ports": {
            "8088/tcp": [{"HostIp": "127.0.0.1", "HostPort": published}] if published else None}}}

    def reload(self) -> None: ...


class Containers:
    def __init__(self, published: str | None) -> None:
        self.published = published
        self.started: list[Container] = []

    def get(self, name: str) -> Container:
        if not self.started:
            raise NotFound(name)
        return self.started[0]

    def run(self, image: str, **options: Any) -> Container:
        container = Container(options, self.published)
        self.started.append(container)
        return container


class Client:
    def __init__(self, published: str | None = "49153") -> None:
        self.containers = Containers(published)


def runtime(mode: str, client: Client) -> DockerRuntime:
    r = DockerRuntime(None, mode, Hardening(), command=["serve", "--port={port}"])
    r._client = client
    return r


def test_behind_a_bridge_the_engine_chooses_the_host_port() -> None:
    client = Client(published="49153")
    running = runtime("bridge", client).ensure_running(SPEC)
    assert running.host_port == 49153
    options = client.containers.started[0].options
    assert options["ports"] == {"8088/tcp": ("127.0.0.1", None)}
    assert options["command"] == ["serve", "--port=8088"]
    assert options["environment"]["WORKSPACE_PORT"] == "8088"
    assert PORT_LABEL not in options["labels"]


def test_a_running_workspace_is_found_at_its_published_port() -> None:
    client = Client(published="49160")
    r = runtime("bridge", client)
    r.ensure_running(SPEC)
    assert r.ensure_running(SPEC).host_port == 49160
    assert len(client.containers.started) == 1


def test_no_published_port_is_an_engine_fault_not_a_wrong_port() -> None:
    with pytest.raises(EngineUnavailable):
        runtime("bridge", Client(published=None)).ensure_running(SPEC)


def test_on_the_host_network_the_container_binds_the_port_picked_for_it() -> None:
    client = Client()
    running = runtime("host", client).ensure_running(SPEC)
    options = client.containers.started[0].options
    assert options["network_mode"] == "host" and "ports" not in options
    assert options["command"] == ["serve", f"--port={running.host_port}"]
    assert options["labels"][PORT_LABEL] == str(running.host_port)
