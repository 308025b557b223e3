"""Workspace commands, the provisioning and stopping process managers, culling and
reconciliation with the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Protocol
from uuid import UUID

from application.accounts import Actor, require_staff
from application.authorization import PaidAccess
from application.eventstore import EventStore, retry_on_conflict
from application.ports import Clock, EngineUnavailable, WorkspaceRuntime, WorkspaceSpec
from domain.text import storable
from domain.workspaces import ACTIVE, PROVISIONING, REQUESTED, RUNNING, Workspace

# Engine states of a container on its way out: as good as gone.
GOING = ("removing", "dead")


class Passwords(Protocol):
    def password_for(self, student_id: UUID) -> str: ...


@dataclass(frozen=True)
class TrackImage:
    image: str
    container_port: int


@dataclass(frozen=True)
class WorkspacePolicy:
    images: dict[str, TrackImage]
    start_timeout: float
    idle_timeout: timedelta
    max_age: timedelta
    activity_every_seconds: int = 300


def container_name(student_id: UUID) -> str:
    # Deterministic: a redelivered provisioning message finds the same container.
    return f"apranova-ws-{student_id}"


class WorkspaceCommands:
    def __init__(self, store: EventStore, runtime: WorkspaceRuntime, passwords: Passwords,
                 clock: Clock, policy: WorkspacePolicy, access: PaidAccess) -> None:
        self.access = access
        self.store = store
        self.runtime = runtime
        self.passwords = passwords
        self.clock = clock
        self.policy = policy

    def launch(self, actor: Actor) -> tuple[int, bool]:
        """Ask for the student's workspace: (position, whether a launch was requested).

        An active workspace is left as it is, never duplicated."""
        student = self.access.student(actor)
        track = student.track.value
        image = self.policy.images[track].image

        def command() -> tuple[int, bool]:
            name = container_name(actor.id)
            workspace = self.store.find(Workspace, Workspace.id_for(actor.id)) or Workspace(
                student_id=actor.id, container_name=name, volume=f"{name}-data")
            if not workspace.request_launch(track, image, actor_id=actor.id):
                return self.store.position_of(workspace.id), False
            return self.store.commit(workspace), True

        return retry_on_conflict(command)

    def stop(self, actor: Actor, student_id: UUID, reason: str) -> int:
        if student_id != actor.id:
            require_staff(actor)

        def command() -> int:
            workspace = self.store.load(Workspace, Workspace.id_for(student_id), "Workspace")
            if not workspace.request_stop(actor.id, reason):
                return 0
            return self.store.commit(workspace)

        return retry_on_conflict(command)

    def seen(self, student_id: UUID) -> None:
        def command() -> int:
            workspace = self.store.find(Workspace, Workspace.id_for(student_id))
            if workspace is None:
                return 0
            workspace.seen(self.clock.now(), self.policy.activity_every_seconds)
            return self.store.commit(workspace)

        retry_on_conflict(command)

    # -- process managers ----------------------------------------------------------------

    def spec(self, workspace: Workspace) -> WorkspaceSpec:
        track = self.policy.images[workspace.track]
        return WorkspaceSpec(
            name=workspace.container_name, image=workspace.image, volume=workspace.volume,
            password=self.passwords.password_for(workspace.student_id),
            labels={"apranova.workspace": str(workspace.id),
                    "apranova.student": str(workspace.student_id)},
            container_port=track.container_port)

    def provision(self, workspace_id: UUID) -> int:
        def begin() -> Workspace | None:
            workspace = self.store.load(Workspace, workspace_id, "Workspace")
            if workspace.begin_provisioning():
                self.store.commit(workspace)
            return workspace if workspace.state == PROVISIONING else None

        workspace = retry_on_conflict(begin)
        if workspace is None:
            return 0  # already running, stopped or failed: a redelivery
        try:
            running = self.runtime.ensure_running(self.spec(workspace))
            ready = self.runtime.wait_ready(running.host_port, self.policy.start_timeout)
        except EngineUnavailable:
            return self._record(workspace_id, lambda w: w.fail(
                "engine_unavailable", "Workspaces are unavailable right now; try again later"))
        except Exception as error:  # the engine's failure is the workspace's outcome
            detail = storable(
                f"The workspace could not start: {type(error).__name__}: {error}"[:500])
            return self._record(workspace_id, lambda w: w.fail("engine_error", detail))
        if not ready:
            self.runtime.stop(workspace.container_name)
            return self._record(workspace_id, lambda w: w.fail(
                "start_timeout", f"not answering after {self.policy.start_timeout:.0f}s"))
        return self._record(workspace_id,
                            lambda w: w.started(running.container_id, running.host_port))

    def halt(self, workspace_id: UUID) -> int:
        workspace = self.store.load(Workspace, workspace_id, "Workspace")
        if workspace.state != "stopping":
            return 0
        self.runtime.stop(workspace.container_name)
        reason = getattr(workspace, "stop_reason", "user")
        return self._record(workspace_id, lambda w: w.stopped(reason))

    def discard(self, student_id: UUID) -> int:
        """An erased student's workspace: stopped, and its container and volume (their
        files) removed from the engine."""
        workspace = self.store.find(Workspace, Workspace.id_for(student_id))
        if workspace is None:
            return 0
        position = 0
        if workspace.request_stop(None, "erased"):
            position = self.store.commit(workspace)
        self.runtime.remove(workspace.container_name, workspace.volume)
        if workspace.state == "stopping":
            position = self._record(workspace.id, lambda w: w.stopped("erased"))
        return position

    def _record(self, workspace_id: UUID, change: Callable[[Workspace], object]) -> int:
        def command() -> int:
            workspace = self.store.load(Workspace, workspace_id, "Workspace")
            change(workspace)
            return self.store.commit(workspace)

        return retry_on_conflict(command)

    # -- scheduled: culling and reconciliation -----------------------------------------------

    def cull(self, workspace_ids: list[UUID], now: datetime | None = None) -> list[UUID]:
        """Stop running workspaces idle too long or older than the maximum age."""
        now = now or self.clock.now()
        culled = []
        for workspace_id in workspace_ids:
            workspace = self.store.find(Workspace, workspace_id)
            if workspace is None or workspace.state != RUNNING:
                continue
            reason = None
            if workspace.launched_at and now - workspace.launched_at > self.policy.max_age:
                reason = "max_age"
            elif workspace.last_activity and \
                    now - workspace.last_activity > self.policy.idle_timeout:
                reason = "idle_timeout"
            if reason and self._record(workspace_id, partial(
                    Workspace.request_stop, actor_id=None, reason=reason)):
                culled.append(workspace_id)
        return culled

    def reconcile(self, workspace_ids: list[UUID], now: datetime | None = None) -> int:
        """Compare the engine with the log; record drift as events. Returns changes made."""
        now = now or self.clock.now()
        engine = self.runtime.managed()
        changes = 0
        for workspace_id in workspace_ids:
            workspace = self.store.find(Workspace, workspace_id)
            if workspace is None:
                continue
            state = engine.get(workspace.container_name)
            if state in GOING:
                state = None
            if workspace.state == RUNNING and state != "running":
                self._record(workspace_id, partial(
                    Workspace.fail, reason="vanished", detail="the container is gone")
                    if state is None else partial(Workspace.stopped, reason="engine_exited"))
                changes += 1
            elif workspace.state in (REQUESTED, PROVISIONING) and workspace.launched_at and \
                    now - workspace.launched_at > timedelta(seconds=self.policy.start_timeout):
                # A provisioner died half way: adopt its container, or give up.
                if state == "running":
                    running = self.runtime.ensure_running(self.spec(workspace))
                    self._record(workspace_id, partial(
                        Workspace.started, container_id=running.container_id,
                        host_port=running.host_port))
                else:
                    self._record(workspace_id, partial(
                        Workspace.fail, reason="start_timeout",
                        detail="provisioning did not finish"))
                changes += 1
            elif workspace.state not in ACTIVE and state == "running":
                self.runtime.stop(workspace.container_name)  # the log says it should not run
                changes += 1
        return changes
