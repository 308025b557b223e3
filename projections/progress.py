"""The progress read model: each student's started projects, steps done and review status."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow

from domain.accounts import Account
from domain.privacy import ERASED
from domain.progress import Progress
from domain.repositories import Repository
from domain.submissions import Submission
from projections.base import Handler, ReadModel, ReadModelProjection, Statement

FOLLOWED = (
    Account.Erased, Repository.Linked, Progress.Opened, Progress.ProjectStarted,
    Progress.StepCompleted,
    Progress.StepUncompleted,
    Progress.ProjectApproved, Submission.Drafted, Submission.Submitted,
    Submission.ReviewStarted, Submission.ChangesRequested,
)
OWNER = "(SELECT account_id FROM rm_progress_owners WHERE progress_id = %s)"


class ProgressView(ReadModel):
    topics = tuple(get_topic(cls) for cls in FOLLOWED)
    tables = ("rm_progress_owners", "rm_progress")
    ddl = """
CREATE TABLE IF NOT EXISTS rm_progress_owners (
    progress_id uuid PRIMARY KEY,
    account_id uuid NOT NULL,
    track text NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_progress (
    account_id uuid NOT NULL,
    project text NOT NULL,
    track text NOT NULL,
    number integer NOT NULL,
    curriculum_version integer NOT NULL,
    status text NOT NULL,
    completed_steps integer[] NOT NULL DEFAULT '{}',
    submission_id uuid,
    repository_url text,
    started_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    approved_at timestamptz,
    PRIMARY KEY (account_id, project)
);
CREATE INDEX IF NOT EXISTS rm_progress_submission ON rm_progress (submission_id)
"""

    def on_track(self, account_id: UUID) -> tuple[DictRow | None, list[DictRow]]:
        """The account's role and track, from the users model, and its progress on that
        track's projects: one query, not one per model, since progress/me asks for both."""
        rows = self.fetch_all(
            "SELECT u.role AS account_role, u.track AS account_track, p.project, p.track, "
            "p.number, p.curriculum_version, p.status, p.completed_steps, p.submission_id, "
            "p.repository_url, p.started_at, p.updated_at, p.approved_at FROM rm_users u "
            "LEFT JOIN rm_progress p ON p.account_id = u.id AND p.track = u.track "
            "WHERE u.id = %s ORDER BY p.number", (account_id,))
        if not rows:
            return None, []
        account = {"role": rows[0]["account_role"], "track": rows[0]["account_track"]}
        return account, [r for r in rows if r["project"] is not None]


def _touch(sql: str, *params: Any) -> Statement:
    return sql, params


class ProgressProjection(ReadModelProjection):
    name = "progress"
    view_class = ProgressView

    def handlers(self) -> dict[type, Handler]:
        return {
            # As a rebuild would show it once the person's key is gone.
            Account.Erased: lambda e: [(
                "UPDATE rm_progress SET repository_url = %s "
                "WHERE account_id = %s AND repository_url IS NOT NULL",
                (ERASED, e.originator_id))],
            Repository.Linked: lambda e: [_touch(
                "UPDATE rm_progress SET repository_url = %s, updated_at = %s "
                "WHERE account_id = %s AND project = %s",
                e.url, e.timestamp, e.student_id, e.project)],
            Progress.Opened: self.opened,
            Progress.ProjectStarted: self.started,
            Progress.StepCompleted: lambda e: [_touch(
                "UPDATE rm_progress SET completed_steps = array_append(completed_steps, %s), "
                f"updated_at = %s WHERE account_id = {OWNER} AND project = %s "
                "AND NOT %s = ANY(completed_steps)",
                e.step, e.timestamp, e.originator_id, e.project, e.step)],
            Progress.StepUncompleted: lambda e: [_touch(
                "UPDATE rm_progress SET completed_steps = array_remove(completed_steps, %s), "
                f"updated_at = %s WHERE account_id = {OWNER} AND project = %s",
                e.step, e.timestamp, e.originator_id, e.project)],
            Progress.ProjectApproved: lambda e: [_touch(
                "UPDATE rm_progress SET status = 'approved', approved_at = %s, updated_at = %s "
                f"WHERE account_id = {OWNER} AND project = %s",
                e.timestamp, e.timestamp, e.originator_id, e.project)],
            Submission.Drafted: lambda e: [_touch(
                "UPDATE rm_progress SET submission_id = %s, updated_at = %s "
                "WHERE account_id = %s AND project = %s",
                e.originator_id, e.timestamp, e.student_id, e.project)],
            Submission.Submitted: lambda e: [self._status(e, "submitted")],
            Submission.ReviewStarted: lambda e: [self._status(e, "under_review")],
            Submission.ChangesRequested: lambda e: [self._status(e, "changes_requested")],
        }

    @staticmethod
    def _status(e: Any, status: str) -> Statement:
        # Approval is recorded by Progress.ProjectApproved, in the same transaction.
        return _touch("UPDATE rm_progress SET status = %s, updated_at = %s "
                      "WHERE submission_id = %s AND status <> 'approved'",
                      status, e.timestamp, e.originator_id)

    @staticmethod
    def opened(e: Progress.Opened) -> Iterable[Statement]:
        yield _touch("INSERT INTO rm_progress_owners VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                     e.originator_id, e.account_id, e.track)

    @staticmethod
    def started(e: Progress.ProjectStarted) -> Iterable[Statement]:
        yield _touch(
            "INSERT INTO rm_progress (account_id, project, track, number, curriculum_version, "
            "status, started_at, updated_at) SELECT o.account_id, %s, o.track, %s, %s, "
            "'in_progress', %s, %s FROM rm_progress_owners o WHERE o.progress_id = %s "
            "ON CONFLICT DO NOTHING",
            e.project, e.number, e.curriculum_version, e.timestamp, e.timestamp,
            e.originator_id)
