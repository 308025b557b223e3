"""The workspaces read model: each student's workspace, its state and why."""

from __future__ import annotations

from functools import partial
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow

from domain.workspaces import Workspace
from projections.base import Handler, ReadModel, ReadModelProjection, row_update

FOLLOWED = (Workspace.Opened, Workspace.LaunchRequested, Workspace.ProvisioningStarted,
            Workspace.Started, Workspace.StopRequested, Workspace.Stopped, Workspace.Failed,
            Workspace.ActivitySeen)
COLUMNS = ("id, student_id, state, reason, detail, track, image, container_name, host_port, "
           "launches, requested_at, running_at, stopped_at, last_activity_at, updated_at")


class WorkspacesView(ReadModel):
    topics = tuple(get_topic(cls) for cls in FOLLOWED)
    tables = ("rm_workspaces",)
    ddl = """
CREATE TABLE IF NOT EXISTS rm_workspaces (
    id uuid PRIMARY KEY,
    student_id uuid NOT NULL UNIQUE,
    state text NOT NULL,
    reason text,
    detail text,
    track text,
    image text,
    container_name text NOT NULL,
    host_port integer,
    launches integer NOT NULL DEFAULT 0,
    requested_at timestamptz,
    running_at timestamptz,
    stopped_at timestamptz,
    last_activity_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_workspaces_state ON rm_workspaces (state)
"""

    def of_student(self, student_id: UUID) -> DictRow | None:
        return self.fetch_one(f"SELECT {COLUMNS} FROM rm_workspaces WHERE student_id = %s",
                              (student_id,))

    def ids(self) -> list[UUID]:
        return [r["id"] for r in self.fetch_all("SELECT id FROM rm_workspaces")]

    def page(self, *, offset: int, limit: int, state: str | None) -> tuple[int, list[DictRow]]:
        return self.page_of("rm_workspaces", COLUMNS,
                            "(%(state)s::text IS NULL OR state = %(state)s)", {"state": state},
                            "updated_at DESC", offset, limit)


_set = partial(row_update, "rm_workspaces")


class WorkspacesProjection(ReadModelProjection):
    name = "workspaces"
    view_class = WorkspacesView

    def handlers(self) -> dict[type, Handler]:
        return {
            Workspace.Opened: lambda e: [(
                "INSERT INTO rm_workspaces (id, student_id, state, container_name, updated_at) "
                "VALUES (%s, %s, 'stopped', %s, %s) ON CONFLICT DO NOTHING",
                (e.originator_id, e.student_id, e.container_name, e.timestamp))],
            Workspace.LaunchRequested: lambda e: [_set(
                e, "state = 'requested', reason = NULL, detail = NULL, track = %s, image = %s, "
                   "launches = launches + 1, requested_at = %s, last_activity_at = %s",
                e.track, e.image, e.timestamp, e.timestamp)],
            Workspace.ProvisioningStarted: lambda e: [_set(e, "state = 'provisioning'")],
            Workspace.Started: lambda e: [_set(
                e, "state = 'running', host_port = %s, running_at = %s", e.host_port,
                e.timestamp)],
            Workspace.StopRequested: lambda e: [_set(e, "state = 'stopping', reason = %s",
                                                     e.reason)],
            Workspace.Stopped: lambda e: [_set(
                e, "state = 'stopped', reason = %s, host_port = NULL, stopped_at = %s",
                e.reason, e.timestamp)],
            Workspace.Failed: lambda e: [_set(
                e, "state = 'failed', reason = %s, detail = %s, host_port = NULL, "
                   "stopped_at = %s", e.reason, e.detail, e.timestamp)],
            Workspace.ActivitySeen: lambda e: [_set(e, "last_activity_at = %s", e.at)],
        }
