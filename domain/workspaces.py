"""A student's personal workspace container and its lifecycle.

requested → provisioning → running → stopping → stopped, or → failed; removed at the end.
Every stop and failure carries its reason: user, admin, idle_timeout, max_age,
start_timeout, engine_error, vanished.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import derived_id

REQUESTED, PROVISIONING, RUNNING = "requested", "provisioning", "running"
STOPPING, STOPPED, FAILED, REMOVED = "stopping", "stopped", "failed", "removed"
ACTIVE = (REQUESTED, PROVISIONING, RUNNING)
STOP_REASONS = ("user", "admin", "idle_timeout", "max_age", "engine_exited", "vanished")


class Workspace(Aggregate):
    class Opened(Aggregate.Created):
        student_id: UUID
        container_name: str
        volume: str

    class LaunchRequested(Aggregate.Event):
        track: str
        image: str
        actor_id: UUID

    class ProvisioningStarted(Aggregate.Event):
        launch: int

    class Started(Aggregate.Event):
        launch: int
        container_id: str
        host_port: int

    class StopRequested(Aggregate.Event):
        actor_id: UUID | None
        reason: str

    class Stopped(Aggregate.Event):
        reason: str

    class Failed(Aggregate.Event):
        launch: int
        reason: str
        detail: str

    class ActivitySeen(Aggregate.Event):
        at: datetime

    @staticmethod
    def id_for(student_id: UUID) -> UUID:
        return derived_id("workspace", student_id)

    @classmethod
    def create_id(cls, student_id: UUID) -> UUID:
        return cls.id_for(student_id)

    @event(Opened)
    def __init__(self, student_id: UUID, container_name: str, volume: str) -> None:
        self.student_id = student_id
        self.container_name = container_name
        self.volume = volume
        self.state = STOPPED
        self.launches = 0
        self.track = ""
        self.image = ""
        self.container_id: str | None = None
        self.host_port: int | None = None
        self.launched_at: datetime | None = None
        self.last_activity: datetime | None = None

    def request_launch(self, track: str, image: str, actor_id: UUID) -> bool:
        """Ask for a container; False when one is already on its way or running."""
        if self.state in ACTIVE:
            return False
        self._launch_requested(track=track, image=image, actor_id=actor_id)
        return True

    @event(LaunchRequested)
    def _launch_requested(self, track: str, image: str, actor_id: UUID) -> None:
        self.state = REQUESTED
        self.launches += 1
        self.track = track
        self.image = image
        self.launched_at = self.modified_on
        self.last_activity = self.modified_on

    def begin_provisioning(self) -> bool:
        if self.state != REQUESTED:
            return False
        self._provisioning(launch=self.launches)
        return True

    @event(ProvisioningStarted)
    def _provisioning(self, launch: int) -> None:
        self.state = PROVISIONING

    def started(self, container_id: str, host_port: int) -> None:
        if self.state in (REQUESTED, PROVISIONING):
            self._started(launch=self.launches, container_id=container_id, host_port=host_port)

    @event(Started)
    def _started(self, launch: int, container_id: str, host_port: int) -> None:
        self.state = RUNNING
        self.container_id = container_id
        self.host_port = host_port

    def fail(self, reason: str, detail: str) -> None:
        if self.state in (REQUESTED, PROVISIONING, RUNNING, STOPPING):
            self._failed(launch=self.launches, reason=reason, detail=detail[:1000])

    @event(Failed)
    def _failed(self, launch: int, reason: str, detail: str) -> None:
        self.state = FAILED
        self.host_port = None

    def request_stop(self, actor_id: UUID | None, reason: str) -> bool:
        if self.state not in ACTIVE:
            return False
        self._stop_requested(actor_id=actor_id, reason=reason)
        return True

    @event(StopRequested)
    def _stop_requested(self, actor_id: UUID | None, reason: str) -> None:
        self.state = STOPPING
        self.stop_reason = reason

    def stopped(self, reason: str) -> None:
        if self.state in (STOPPING, RUNNING, PROVISIONING, REQUESTED):
            self._stopped(reason=reason)

    @event(Stopped)
    def _stopped(self, reason: str) -> None:
        self.state = STOPPED
        self.host_port = None

    def seen(self, at: datetime, every_seconds: int) -> None:
        """Record use, at most once per `every_seconds`, so reads don't flood the log."""
        if self.state == RUNNING and (
                self.last_activity is None
                or (at - self.last_activity).total_seconds() >= every_seconds):
            self._seen(at=at)

    @event(ActivitySeen)
    def _seen(self, at: datetime) -> None:
        self.last_activity = at
