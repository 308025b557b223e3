"""Project submissions and their review cycle.

draft → submitted → under_review → approved
                                  → changes_requested → submitted (a new round) → …
Every transition is an event carrying who did it and why.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.curriculum import Project
from domain.errors import Conflict, Invalid
from domain.ids import derived_id

DRAFT, SUBMITTED, UNDER_REVIEW = "draft", "submitted", "under_review"
APPROVED, CHANGES_REQUESTED = "approved", "changes_requested"
EDITABLE = (DRAFT, CHANGES_REQUESTED)
REVIEWABLE = (SUBMITTED, UNDER_REVIEW)

MAX_TEXT = 10_000
MAX_FEEDBACK = 5_000
URL = re.compile(r"^https?://[^\s/$.?#][^\s]{1,2000}$", re.IGNORECASE)
GITHUB_REPO = re.compile(r"^https://github\.com/[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}(/.*)?$")
RUBRIC_MIN, RUBRIC_MAX = 0, 5


def _invalid_transition(action: str, status: str) -> Conflict:
    return Conflict(f"Cannot {action} a submission that is {status.replace('_', ' ')}",
                    code="INVALID_TRANSITION", status=status)


def check_deliverable_value(kind: str, value: str) -> None:
    if kind == "FILE":
        raise Invalid("File deliverables are uploaded, not set as text",
                      code="FILE_DELIVERABLE_NEEDS_UPLOAD")
    if kind == "LINK" and not URL.match(value):
        raise Invalid("A link must be an http(s) URL", code="INVALID_DELIVERABLE")
    if kind == "GITHUB" and not GITHUB_REPO.match(value):
        raise Invalid("Expected a GitHub repository URL (https://github.com/owner/repo)",
                      code="INVALID_DELIVERABLE")
    if kind == "TEXT" and not 1 <= len(value.strip()) <= MAX_TEXT:
        raise Invalid(f"Text must be 1 to {MAX_TEXT} characters", code="INVALID_DELIVERABLE")


def check_rubric(rubric: dict[str, int]) -> None:
    for name, score in rubric.items():
        if not 1 <= len(name) <= 60 or not RUBRIC_MIN <= score <= RUBRIC_MAX:
            raise Invalid(f"Rubric scores are {RUBRIC_MIN}..{RUBRIC_MAX} per named criterion",
                          code="INVALID_RUBRIC")


class Submission(Aggregate):
    class Drafted(Aggregate.Created):
        student_id: UUID
        project: str
        track: str
        curriculum_version: int
        actor_id: UUID

    class DeliverableSet(Aggregate.Event):
        key: str
        kind: str
        value: str
        actor_id: UUID

    class FileAttached(Aggregate.Event):
        key: str
        sha256: str
        size: int
        content_type: str
        filename: str
        actor_id: UUID

    class Submitted(Aggregate.Event):
        round: int
        note: str
        actor_id: UUID

    class ReviewStarted(Aggregate.Event):
        actor_id: UUID

    class Approved(Aggregate.Event):
        feedback: str
        rubric: dict[str, int]
        actor_id: UUID

    class ChangesRequested(Aggregate.Event):
        feedback: str
        rubric: dict[str, int]
        actor_id: UUID

    class PullRequestRecorded(Aggregate.Event):
        delivery_id: str
        number: int
        action: str
        url: str
        head_sha: str

    @staticmethod
    def id_for(student_id: UUID, project: str) -> UUID:
        return derived_id("submission", f"{student_id}:{project}")

    @classmethod
    def create_id(cls, student_id: UUID, project: str) -> UUID:
        return cls.id_for(student_id, project)

    @event(Drafted)
    def __init__(self, student_id: UUID, project: str, track: str, curriculum_version: int,
                 actor_id: UUID) -> None:
        self.student_id = student_id
        self.project = project
        self.track = track
        self.curriculum_version = curriculum_version
        self.status = DRAFT
        self.round = 0
        self.deliverables: dict[str, dict[str, Any]] = {}
        self.pull_requests: dict[int, dict[str, Any]] = {}
        self.deliveries: set[str] = set()

    def set_deliverable(self, project: Project, key: str, value: str, actor_id: UUID) -> None:
        if self.status not in EDITABLE:
            raise _invalid_transition("change", self.status)
        kind = project.deliverable(key).type
        check_deliverable_value(kind, value)
        current = self.deliverables.get(key)
        if current is None or current.get("value") != value:
            self._deliverable_set(key=key, kind=kind, value=value, actor_id=actor_id)

    @event(DeliverableSet)
    def _deliverable_set(self, key: str, kind: str, value: str, actor_id: UUID) -> None:
        self.deliverables[key] = {"type": kind, "value": value}

    def attach_file(self, project: Project, key: str, sha256: str, size: int,
                    content_type: str, filename: str, actor_id: UUID) -> None:
        if self.status not in EDITABLE:
            raise _invalid_transition("change", self.status)
        if project.deliverable(key).type != "FILE":
            raise Invalid(f"Deliverable '{key}' is not a file", code="NOT_A_FILE_DELIVERABLE")
        self._file_attached(key=key, sha256=sha256, size=size, content_type=content_type,
                            filename=filename, actor_id=actor_id)

    @event(FileAttached)
    def _file_attached(self, key: str, sha256: str, size: int, content_type: str,
                       filename: str, actor_id: UUID) -> None:
        self.deliverables[key] = {"type": "FILE", "sha256": sha256, "size": size,
                                  "content_type": content_type, "filename": filename}

    def submit(self, project: Project, note: str, actor_id: UUID) -> None:
        if self.status not in EDITABLE:
            raise _invalid_transition("submit", self.status)
        missing = [d.key for d in project.deliverables
                   if d.required and d.key not in self.deliverables]
        if missing:
            raise Invalid("Required deliverables are missing", code="MISSING_DELIVERABLES",
                          missing=missing)
        self._submitted(round=self.round + 1, note=note, actor_id=actor_id)

    @event(Submitted)
    def _submitted(self, round: int, note: str, actor_id: UUID) -> None:
        self.round = round
        self.status = SUBMITTED

    def start_review(self, actor_id: UUID) -> None:
        if self.status == UNDER_REVIEW:
            return
        if self.status != SUBMITTED:
            raise _invalid_transition("start reviewing", self.status)
        self._review_started(actor_id=actor_id)

    @event(ReviewStarted)
    def _review_started(self, actor_id: UUID) -> None:
        self.status = UNDER_REVIEW

    def _check_review(self, reviewer: UUID, feedback: str, rubric: dict[str, int]) -> None:
        if reviewer == self.student_id:
            raise Conflict("Nobody reviews their own submission", code="CANNOT_REVIEW_OWN")
        if len(feedback) > MAX_FEEDBACK:
            raise Invalid(f"Feedback is limited to {MAX_FEEDBACK} characters",
                          code="INVALID_FEEDBACK")
        check_rubric(rubric)

    def approve(self, feedback: str, rubric: dict[str, int], actor_id: UUID) -> None:
        if self.status not in REVIEWABLE:
            raise _invalid_transition("approve", self.status)
        self._check_review(actor_id, feedback, rubric)
        self._approved(feedback=feedback, rubric=rubric, actor_id=actor_id)

    @event(Approved)
    def _approved(self, feedback: str, rubric: dict[str, int], actor_id: UUID) -> None:
        self.status = APPROVED

    def request_changes(self, feedback: str, rubric: dict[str, int], actor_id: UUID) -> None:
        if self.status not in REVIEWABLE:
            raise _invalid_transition("request changes on", self.status)
        self._check_review(actor_id, feedback, rubric)
        if not feedback.strip():
            raise Invalid("Say what needs to change", code="FEEDBACK_REQUIRED")
        self._changes_requested(feedback=feedback, rubric=rubric, actor_id=actor_id)

    @event(ChangesRequested)
    def _changes_requested(self, feedback: str, rubric: dict[str, int], actor_id: UUID) -> None:
        self.status = CHANGES_REQUESTED

    def record_pull_request(self, delivery_id: str, number: int, action: str, url: str,
                            head_sha: str) -> bool:
        """Note what happened to a pull request (opened, updated, merged, closed).

        Recording never changes the review status: a merge approves nothing by itself.
        """
        if delivery_id in self.deliveries:
            return False
        self._pull_request(delivery_id=delivery_id, number=number, action=action, url=url,
                           head_sha=head_sha)
        return True

    @event(PullRequestRecorded)
    def _pull_request(self, delivery_id: str, number: int, action: str, url: str,
                      head_sha: str) -> None:
        self.deliveries.add(delivery_id)
        self.pull_requests[number] = {"state": action, "url": url, "head_sha": head_sha}
