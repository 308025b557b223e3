"""Submissions: detail with history, per-student lists and trainers' review queues."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow

from domain.accounts import Account
from domain.privacy import ERASED
from domain.students import Student
from domain.submissions import Submission
from projections.base import Handler, ReadModel, ReadModelProjection, Statement

SUBMISSION_EVENTS = (
    Submission.Drafted, Submission.DeliverableSet, Submission.FileAttached,
    Submission.Submitted, Submission.ReviewStarted, Submission.Approved,
    Submission.ChangesRequested, Submission.PullRequestRecorded,
)
FOLLOWED = (
    Account.Registered, Account.ProfileUpdated, Account.Erased, Student.Enrolled,
    Student.TrainerAssigned,
    Student.TrainerUnassigned, *SUBMISSION_EVENTS,
)
COLUMNS = (
    "s.id, s.student_id, p.name AS student_name, s.trainer_id, s.project, s.track, "
    "s.curriculum_version, s.status, s.round, s.deliverables, s.pull_requests, s.feedback, "
    "s.rubric, "
    "s.reviewed_by, s.created_at, s.submitted_at, s.updated_at"
)
FROM = "rm_submissions s JOIN rm_submission_people p ON p.account_id = s.student_id"
WAITING = ("submitted", "under_review")


class SubmissionsView(ReadModel):
    topics = tuple(get_topic(cls) for cls in FOLLOWED)
    tables = ("rm_submission_people", "rm_submissions", "rm_submission_history")
    ddl = """
CREATE TABLE IF NOT EXISTS rm_submission_people (
    account_id uuid PRIMARY KEY,
    student_aggregate_id uuid UNIQUE,
    name text NOT NULL,
    trainer_id uuid
);
CREATE TABLE IF NOT EXISTS rm_submissions (
    id uuid PRIMARY KEY,
    student_id uuid NOT NULL,
    trainer_id uuid,
    project text NOT NULL,
    track text NOT NULL,
    curriculum_version integer NOT NULL,
    status text NOT NULL,
    round integer NOT NULL DEFAULT 0,
    deliverables jsonb NOT NULL DEFAULT '{}',
    pull_requests jsonb NOT NULL DEFAULT '{}',
    feedback text,
    rubric jsonb,
    reviewed_by uuid,
    created_at timestamptz NOT NULL,
    submitted_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_submissions_student ON rm_submissions (student_id, created_at);
CREATE INDEX IF NOT EXISTS rm_submissions_queue
    ON rm_submissions (trainer_id, status, submitted_at);
CREATE TABLE IF NOT EXISTS rm_submission_history (
    submission_id uuid NOT NULL,
    version integer NOT NULL,
    at timestamptz NOT NULL,
    event text NOT NULL,
    actor_id uuid,
    status text NOT NULL,
    detail jsonb NOT NULL,
    PRIMARY KEY (submission_id, version)
)
"""

    def get(self, submission_id: UUID) -> DictRow | None:
        return self.fetch_one(f"SELECT {COLUMNS} FROM {FROM} WHERE s.id = %s", (submission_id,))

    def history(self, submission_id: UUID) -> list[DictRow]:
        return self.fetch_all(
            "SELECT version, at, event, actor_id, status, detail FROM rm_submission_history "
            "WHERE submission_id = %s ORDER BY version", (submission_id,))

    def page(
        self, *, offset: int, limit: int, student_id: UUID | None = None,
        trainer_id: UUID | None = None, status: str | None = None, project: str | None = None,
    ) -> tuple[int, list[DictRow]]:
        params = {"student": student_id, "trainer": trainer_id, "status": status,
                  "project": project}
        where = (
            "(%(student)s::uuid IS NULL OR s.student_id = %(student)s) AND "
            "(%(trainer)s::uuid IS NULL OR s.trainer_id = %(trainer)s) AND "
            "(%(status)s::text IS NULL OR s.status = %(status)s) AND "
            "(%(project)s::text IS NULL OR s.project = %(project)s)"
        )
        return self.page_of(FROM, COLUMNS, where, params, "s.created_at, s.id", offset, limit)

    def queue(
        self, *, trainer_id: UUID | None, offset: int, limit: int
    ) -> tuple[int, list[DictRow]]:
        """Waiting submissions, oldest first; every trainer's when trainer_id is None."""
        return self.page_of(
            FROM, f"{COLUMNS}, extract(epoch FROM now() - s.submitted_at) AS waiting_seconds",
            "s.status = ANY(%(waiting)s) AND "
            "(%(trainer)s::uuid IS NULL OR s.trainer_id = %(trainer)s)",
            {"trainer": trainer_id, "waiting": list(WAITING)}, "s.submitted_at, s.id",
            offset, limit)


def _st(sql: str, *params: Any) -> Statement:
    return sql, params


# The keys under which this model's JSON keeps the personal fields of submission events.
PERSONAL_KEYS = ("value", "filename", "note", "url", "feedback")


def _erased_in(column: str) -> str:
    """SQL: the JSON object `column` with each personal key's value erased (parameters:
    the marker, then the keys)."""
    return (f"{column} || coalesce((SELECT jsonb_object_agg(k, to_jsonb(%s::text)) "
            f"FROM jsonb_object_keys({column}) AS k WHERE k = ANY(%s::text[])), '{{}}')")


def _erased_in_each(column: str) -> str:
    """SQL: the JSON object of objects `column` with each entry's personal keys erased
    (parameters as _erased_in's)."""
    return (f"coalesce((SELECT jsonb_object_agg(entry, {_erased_in('v')}) "
            f"FROM jsonb_each({column}) AS d(entry, v)), '{{}}')")


class SubmissionsProjection(ReadModelProjection):
    name = "submissions"
    view_class = SubmissionsView

    def handlers(self) -> dict[type, Handler]:
        table: dict[type, Handler] = {
            Account.Registered: lambda e: [_st(
                "INSERT INTO rm_submission_people (account_id, name) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING", e.originator_id, e.name)],
            Account.ProfileUpdated: lambda e: [_st(
                "UPDATE rm_submission_people SET name = %s WHERE account_id = %s",
                e.name, e.originator_id)],
            Account.Erased: self.erased,
            Student.Enrolled: lambda e: [_st(
                "UPDATE rm_submission_people SET student_aggregate_id = %s WHERE account_id = %s",
                e.originator_id, e.account_id)],
            Student.TrainerAssigned: lambda e: self._trainer(e, e.trainer_id),
            Student.TrainerUnassigned: lambda e: self._trainer(e, None),
        }
        for cls in SUBMISSION_EVENTS:
            table[cls] = self.submission_event
        return table

    @staticmethod
    def erased(e: Account.Erased) -> Iterable[Statement]:
        """The person's rows as a rebuild shows them once their key is gone: every
        personal value (PERSONAL_KEYS) reads as erased, everything else stays."""
        yield _st("UPDATE rm_submission_people SET name = %s WHERE account_id = %s",
                  ERASED, e.originator_id)
        each, keys = _erased_in_each, list(PERSONAL_KEYS)
        yield _st(f"UPDATE rm_submissions SET deliverables = {each('deliverables')}, "
                  f"pull_requests = {each('pull_requests')}, "
                  "feedback = CASE WHEN feedback IS NULL THEN NULL ELSE %s END "
                  "WHERE student_id = %s",
                  ERASED, keys, ERASED, keys, ERASED, e.originator_id)
        yield _st(f"UPDATE rm_submission_history SET detail = {_erased_in('detail')} "
                  "WHERE submission_id IN (SELECT id FROM rm_submissions WHERE student_id = %s)",
                  ERASED, keys, e.originator_id)

    @staticmethod
    def _trainer(e: Any, trainer_id: UUID | None) -> Iterable[Statement]:
        yield _st("UPDATE rm_submission_people SET trainer_id = %s "
                  "WHERE student_aggregate_id = %s", trainer_id, e.originator_id)
        yield _st("UPDATE rm_submissions SET trainer_id = %s WHERE student_id = "
                  "(SELECT account_id FROM rm_submission_people WHERE student_aggregate_id = %s)",
                  trainer_id, e.originator_id)

    def submission_event(self, e: Any) -> Iterable[Statement]:
        at, sid = e.timestamp, e.originator_id
        status_sql = "(SELECT status FROM rm_submissions WHERE id = %s)"
        detail: dict[str, Any] = {}
        if isinstance(e, Submission.Drafted):
            yield _st(
                "INSERT INTO rm_submissions (id, student_id, trainer_id, project, track, "
                "curriculum_version, status, created_at, updated_at) SELECT %s, %s, "
                "(SELECT trainer_id FROM rm_submission_people WHERE account_id = %s), "
                "%s, %s, %s, 'draft', %s, %s ON CONFLICT DO NOTHING",
                sid, e.student_id, e.student_id, e.project, e.track, e.curriculum_version,
                at, at)
        elif isinstance(e, Submission.DeliverableSet):
            detail = {"key": e.key, "type": e.kind, "value": e.value}
            yield _st("UPDATE rm_submissions SET deliverables = deliverables || %s, "
                      "updated_at = %s WHERE id = %s",
                      json.dumps({e.key: {"type": e.kind, "value": e.value}}), at, sid)
        elif isinstance(e, Submission.FileAttached):
            detail = {"key": e.key, "type": "FILE", "sha256": e.sha256, "size": e.size,
                      "content_type": e.content_type, "filename": e.filename}
            yield _st("UPDATE rm_submissions SET deliverables = deliverables || %s, "
                      "updated_at = %s WHERE id = %s",
                      json.dumps({e.key: detail}), at, sid)
        elif isinstance(e, Submission.Submitted):
            detail = {"round": e.round, "note": e.note}
            yield _st("UPDATE rm_submissions SET status = 'submitted', round = %s, "
                      "submitted_at = %s, updated_at = %s WHERE id = %s", e.round, at, at, sid)
        elif isinstance(e, Submission.PullRequestRecorded):
            detail = {"number": e.number, "action": e.action, "url": e.url,
                      "head_sha": e.head_sha}
            yield _st("UPDATE rm_submissions SET pull_requests = pull_requests || %s, "
                      "updated_at = %s WHERE id = %s",
                      json.dumps({str(e.number): {"state": e.action, "url": e.url,
                                                  "head_sha": e.head_sha}}), at, sid)
        elif isinstance(e, Submission.ReviewStarted):
            yield _st("UPDATE rm_submissions SET status = 'under_review', reviewed_by = %s, "
                      "updated_at = %s WHERE id = %s", e.actor_id, at, sid)
        else:
            status = "approved" if isinstance(e, Submission.Approved) else "changes_requested"
            detail = {"feedback": e.feedback, "rubric": e.rubric}
            yield _st("UPDATE rm_submissions SET status = %s, feedback = %s, rubric = %s, "
                      "reviewed_by = %s, updated_at = %s WHERE id = %s",
                      status, e.feedback, json.dumps(e.rubric), e.actor_id, at, sid)
        yield _st(
            "INSERT INTO rm_submission_history SELECT %s, %s, %s, %s, %s, "
            f"{status_sql}, %s ON CONFLICT DO NOTHING",
            sid, e.originator_version, at, type(e).__name__, getattr(e, "actor_id", None), sid,
            json.dumps(detail))
