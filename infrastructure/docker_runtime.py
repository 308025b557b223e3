"""Workspaces as hardened containers on a Docker engine (the docker SDK).

Every container: a non-root user, all capabilities dropped, no-new-privileges, pids,
memory and CPU limits, a read-only root where the image allows, its port on 127.0.0.1
only, no Docker socket inside, and its own password.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import APIError, DockerException, NotFound
from requests.exceptions import ConnectionError as EngineConnectionError

from application.ports import EngineUnavailable, RunningContainer, WorkspaceSpec

LABEL = "apranova.workspace"
PORT_LABEL = "apranova.port"


@dataclass(frozen=True)
class Hardening:
    user: str = "1000:1000"
    memory: str = "2g"
    nano_cpus: int = 1_000_000_000
    pids: int = 512
    read_only: bool = False
    tmpfs_size: str = "256m"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DockerRuntime:
    def __init__(self, base_url: str | None, network_mode: str, hardening: Hardening,
                 command: list[str] | None = None) -> None:
        self.base_url = base_url
        self.network_mode = network_mode
        self.hardening = hardening
        self.command = command
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        # Connected on first use, so a server without an engine still starts.
        with self._lock:
            if self._client is None:
                try:
                    self._client = (docker.DockerClient(base_url=self.base_url, timeout=30)
                                    if self.base_url else docker.from_env(timeout=30))
                except DockerException as error:
                    raise EngineUnavailable(str(error)) from None
            return self._client

    def _reachable(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """`call`, with a lost connection to the engine said as EngineUnavailable."""
        try:
            return call(*args, **kwargs)
        except EngineConnectionError as error:
            with self._lock:
                self._client = None  # connect afresh next time
            raise EngineUnavailable(str(error)) from None

    def _get(self, name: str) -> Any:
        try:
            return self._reachable(self.client.containers.get, name)
        except NotFound:
            return None

    def ensure_running(self, spec: WorkspaceSpec) -> RunningContainer:
        existing = self._get(spec.name)
        if existing is not None and existing.status == "running":
            return RunningContainer(existing.id, self._host_port(existing, spec))
        if existing is not None:
            existing.remove(force=True)  # the volume keeps the work; the container is cheap
        try:
            container = self._reachable(self._run, spec)
        except APIError as error:
            if error.status_code != 409:
                raise
            # Someone else created it a moment ago (a redelivered message): use theirs.
            container = self.client.containers.get(spec.name)
            container.start()
        container.reload()
        return RunningContainer(container.id, self._host_port(container, spec))

    def _host_port(self, container: Any, spec: WorkspaceSpec) -> int:
        """Where the workspace listens on 127.0.0.1. With a bridge the engine chose it
        when it published the port (no race with other listeners, unlike picking a
        free one first); with the host's network the container binds the one we chose."""
        if self.network_mode == "host":
            return int(container.labels[PORT_LABEL])
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(
            f"{spec.container_port}/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") in ("127.0.0.1", "") and binding.get("HostPort"):
                return int(binding["HostPort"])
        raise EngineUnavailable(f"the engine published no port for {spec.name}")

    def _run(self, spec: WorkspaceSpec) -> Any:
        h = self.hardening
        host_network = self.network_mode == "host"
        # On the host's network the container binds a port itself, so one is picked here;
        # behind a bridge it listens on its own port and the engine publishes it.
        port = free_port() if host_network else spec.container_port
        options: dict[str, Any] = {
            "name": spec.name, "detach": True, "user": h.user, "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges=true"], "pids_limit": h.pids,
            "mem_limit": h.memory, "memswap_limit": h.memory, "nano_cpus": h.nano_cpus,
            "read_only": h.read_only, "init": True,
            "tmpfs": {"/tmp": f"rw,size={h.tmpfs_size}"} if h.read_only else {},
            "volumes": {spec.volume: {"bind": "/workspace", "mode": "rw"}},
            "labels": {**spec.labels, LABEL: spec.labels.get(LABEL, spec.name),
                       **({PORT_LABEL: str(port)} if host_network else {})},
            "environment": {"PASSWORD": spec.password, "WORKSPACE_PASSWORD": spec.password,
                            "WORKSPACE_PORT": str(port)},
        }
        if self.command:
            options["command"] = [part.format(port=port) for part in self.command]
        if host_network:
            options["network_mode"] = "host"
        else:
            options["ports"] = {f"{spec.container_port}/tcp": ("127.0.0.1", None)}
        return self.client.containers.run(spec.image, **options)

    def wait_ready(self, host_port: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", host_port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.1)
        return False

    def stop(self, name: str) -> None:
        container = self._get(name)
        if container is not None and container.status in ("running", "restarting", "paused"):
            self._reachable(container.stop, timeout=10)

    def remove(self, name: str, volume: str) -> None:
        container = self._get(name)
        if container is not None:
            self._reachable(container.remove, force=True)
        with contextlib.suppress(NotFound):  # never made, or removed already
            self._reachable(self.client.volumes.get, volume).remove(force=True)

    def state(self, name: str) -> str | None:
        container = self._get(name)
        return str(container.status) if container is not None else None

    def managed(self) -> dict[str, str]:
        listed = self._reachable(self.client.containers.list, all=True,
                                 filters={"label": LABEL})
        return {c.name: c.status for c in listed}
