"""Curriculum commands: publishing versions, starting projects, steps, submissions, reviews."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from application.accounts import Actor
from application.authorization import PaidAccess
from application.eventstore import EventStore, retry_on_conflict
from application.ports import FileStore
from domain.curriculum import Content, Curriculum, Project
from domain.errors import Conflict, NotFound
from domain.progress import Progress
from domain.roles import Role, is_staff
from domain.students import Student
from domain.submissions import Submission
from domain.uploads import classify_upload

REVIEW_DECISIONS = ("start_review", "approve", "request_changes")


@dataclass(frozen=True)
class Created:
    id: UUID
    position: int


class CurriculumCommands:
    def __init__(self, store: EventStore, files: FileStore, max_upload_bytes: int,
                 access: PaidAccess) -> None:
        self.store = store
        self.files = files
        self.max_upload_bytes = max_upload_bytes
        self.access = access

    # -- content ---------------------------------------------------------------------------

    def publish(self, data: dict[str, Any], actor_id: UUID | None, note: str) -> int:
        """Record the content as a new version if it differs from the current one."""
        Content.parse(data)

        def command() -> int:
            curriculum = self.store.find(Curriculum, Curriculum.ID) or Curriculum()
            if not curriculum.publish(data, actor_id, note):
                return 0
            return self.store.commit(curriculum)

        return retry_on_conflict(command)

    def curriculum(self) -> Curriculum:
        curriculum = self.store.find(Curriculum, Curriculum.ID)
        if curriculum is None or curriculum.latest == 0:
            raise NotFound("No curriculum has been published", code="NO_CURRICULUM")
        return curriculum

    # -- progress ----------------------------------------------------------------------------

    def start_project(self, actor: Actor, slug: str) -> int:
        student = self.access.student(actor)
        curriculum = self.curriculum()
        project = curriculum.content().project(slug)

        def command() -> int:
            track = student.track.value
            progress = (self.store.find(Progress, Progress.id_for(actor.id, track))
                        or Progress(account_id=actor.id, track=track))
            progress.start(project, curriculum.latest, actor_id=actor.id)
            return self.store.commit(progress)

        return retry_on_conflict(command)

    def set_step(self, actor: Actor, slug: str, step: int, done: bool) -> int:
        student = self.access.student(actor)

        def command() -> int:
            progress = self._progress(actor.id, student.track.value)
            project = self._started_project(progress, slug)
            progress.set_step(project, step, done, actor_id=actor.id)
            return self.store.commit(progress)

        return retry_on_conflict(command)

    def _progress(self, account_id: UUID, track: str) -> Progress:
        progress = self.store.find(Progress, Progress.id_for(account_id, track))
        if progress is None:
            raise Conflict("Start the project first", code="PROJECT_NOT_STARTED")
        return progress

    def _started_project(self, progress: Progress, slug: str) -> Project:
        if not progress.is_started(slug):
            self.curriculum().content().project(slug)  # 404 for unknown projects
            raise Conflict("Start the project first", code="PROJECT_NOT_STARTED")
        return self.curriculum().content(progress.version_of(slug)).project(slug)

    # -- submissions ---------------------------------------------------------------------

    def create_submission(
        self, actor: Actor, slug: str, deliverables: dict[str, str], submit: bool, note: str,
    ) -> Created:
        student = self.access.student(actor)

        def command() -> Created:
            progress = self._progress(actor.id, student.track.value)
            project = self._started_project(progress, slug)
            if slug in progress.approved:
                raise Conflict("The project is already approved",
                               code="PROJECT_ALREADY_APPROVED")
            existing = self.store.find(Submission, Submission.id_for(actor.id, slug))
            if existing is not None:
                raise Conflict("There is already a submission for this project; update it",
                               code="SUBMISSION_EXISTS", id=str(existing.id))
            submission = Submission(student_id=actor.id, project=slug,
                                    track=student.track.value,
                                    curriculum_version=progress.version_of(slug),
                                    actor_id=actor.id)
            self._edit(submission, project, deliverables, submit, note, actor)
            return Created(submission.id, self.store.commit(submission))

        return retry_on_conflict(command)

    def update_submission(
        self, actor: Actor, submission_id: UUID, deliverables: dict[str, str], submit: bool,
        note: str,
    ) -> int:
        def command() -> int:
            submission = self._own_submission(actor, submission_id)
            project = self._project_of(submission)
            self._edit(submission, project, deliverables, submit, note, actor)
            return self.store.commit(submission)

        return retry_on_conflict(command)

    def _edit(self, submission: Submission, project: Project, deliverables: dict[str, str],
              submit: bool, note: str, actor: Actor) -> None:
        for key, value in deliverables.items():
            submission.set_deliverable(project, key, value, actor_id=actor.id)
        if submit:
            submission.submit(project, note, actor_id=actor.id)

    def attach_file(
        self, actor: Actor, submission_id: UUID, key: str, filename: str,
        chunks: Iterable[bytes],
    ) -> int:
        submission = self._own_submission(actor, submission_id)
        project = self._project_of(submission)
        project.deliverable(key)  # 404 before reading the body
        stored = self.files.put(chunks, self.max_upload_bytes)
        content_type = classify_upload(filename, stored.head)

        def command() -> int:
            fresh = self._own_submission(actor, submission_id)
            fresh.attach_file(project, key, stored.sha256, stored.size, content_type,
                              filename.replace("\\", "/").rsplit("/", 1)[-1], actor_id=actor.id)
            return self.store.commit(fresh)

        return retry_on_conflict(command)

    def _own_submission(self, actor: Actor, submission_id: UUID) -> Submission:
        """The acting student's submission, to change: their access must be open."""
        submission = self.store.find(Submission, submission_id)
        if submission is None or submission.student_id != actor.id:
            raise NotFound("Submission not found")
        self.access.student(actor)
        return submission

    def _project_of(self, submission: Submission) -> Project:
        return self.curriculum().content(submission.curriculum_version).project(
            submission.project)

    # -- review ----------------------------------------------------------------------------

    def may_review(self, actor: Actor, student_id: UUID) -> bool:
        if is_staff(actor.role):
            return True
        if actor.role is not Role.TRAINER:
            return False
        student = self.store.find(Student, Student.id_for(student_id))
        return student is not None and student.trainer_id == actor.id

    def review(
        self, actor: Actor, submission_id: UUID, decision: str, feedback: str,
        rubric: dict[str, int],
    ) -> int:
        def command() -> int:
            submission = self.store.find(Submission, submission_id)
            if submission is None or not self.may_review(actor, submission.student_id):
                raise NotFound("Submission not found")
            if decision == "start_review":
                submission.start_review(actor_id=actor.id)
                return self.store.commit(submission)
            if decision == "request_changes":
                submission.request_changes(feedback, rubric, actor_id=actor.id)
                return self.store.commit(submission)
            submission.approve(feedback, rubric, actor_id=actor.id)
            # Approval unlocks the next project: both change in one transaction.
            progress = self._progress(submission.student_id, submission.track)
            progress.approve(submission.project, submission.id, actor_id=actor.id)
            return self.store.commit(submission, progress)

        return retry_on_conflict(command)
