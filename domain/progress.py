"""A student's progress through their track: which projects are started, steps done, approved.

One aggregate per (student, track) keeps the unlock rule consistent: project N can be
started only once project N-1 is approved, and approval is recorded here in the same
transaction as the submission's approval.
"""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.curriculum import Project
from domain.errors import Conflict, Invalid
from domain.ids import derived_id


def unlocked(number: int, approved_numbers: Collection[int]) -> bool:
    """Project N opens once project N-1 is approved; the first is open from the start."""
    return number == 1 or (number - 1) in approved_numbers

class Progress(Aggregate):
    class Opened(Aggregate.Created):
        account_id: UUID
        track: str

    class ProjectStarted(Aggregate.Event):
        project: str
        number: int
        curriculum_version: int
        actor_id: UUID

    class StepCompleted(Aggregate.Event):
        project: str
        step: int
        actor_id: UUID

    class StepUncompleted(Aggregate.Event):
        project: str
        step: int
        actor_id: UUID

    class ProjectApproved(Aggregate.Event):
        project: str
        submission_id: UUID
        actor_id: UUID

    @staticmethod
    def id_for(account_id: UUID, track: str) -> UUID:
        return derived_id("progress", f"{account_id}:{track}")

    @classmethod
    def create_id(cls, account_id: UUID, track: str) -> UUID:
        return cls.id_for(account_id, track)

    @event(Opened)
    def __init__(self, account_id: UUID, track: str) -> None:
        self.account_id = account_id
        self.track = track
        self.versions: dict[str, int] = {}
        self.numbers: dict[str, int] = {}
        self.completed: dict[str, set[int]] = {}
        self.approved_numbers: set[int] = set()
        self.approved: set[str] = set()

    def is_started(self, slug: str) -> bool:
        return slug in self.versions

    def version_of(self, slug: str) -> int:
        return self.versions[slug]

    def is_unlocked(self, number: int) -> bool:
        return unlocked(number, self.approved_numbers)

    def start(self, project: Project, curriculum_version: int, actor_id: UUID) -> None:
        if project.track != self.track:
            raise Invalid("That project belongs to another track", code="WRONG_TRACK")
        if self.is_started(project.slug):
            return
        if not self.is_unlocked(project.number):
            raise Conflict(
                f"Project {project.number} unlocks when project {project.number - 1} is approved",
                code="PROJECT_LOCKED",
            )
        self._started(project=project.slug, number=project.number,
                      curriculum_version=curriculum_version, actor_id=actor_id)

    @event(ProjectStarted)
    def _started(self, project: str, number: int, curriculum_version: int,
                 actor_id: UUID) -> None:
        self.versions[project] = curriculum_version
        self.numbers[project] = number
        self.completed[project] = set()

    def _require_open(self, project: Project) -> None:
        if not self.is_started(project.slug):
            raise Conflict("Start the project first", code="PROJECT_NOT_STARTED")
        if project.slug in self.approved:
            raise Conflict("The project is already approved", code="PROJECT_ALREADY_APPROVED")

    def set_step(self, project: Project, step: int, done: bool, actor_id: UUID) -> None:
        """`project` must be the version this student started on."""
        self._require_open(project)
        if step not in project.step_numbers():
            raise Invalid(f"Project {project.slug} has no step {step}", code="UNKNOWN_STEP")
        if done and step not in self.completed[project.slug]:
            self._step_completed(project=project.slug, step=step, actor_id=actor_id)
        elif not done and step in self.completed[project.slug]:
            self._step_uncompleted(project=project.slug, step=step, actor_id=actor_id)

    @event(StepCompleted)
    def _step_completed(self, project: str, step: int, actor_id: UUID) -> None:
        self.completed[project].add(step)

    @event(StepUncompleted)
    def _step_uncompleted(self, project: str, step: int, actor_id: UUID) -> None:
        self.completed[project].discard(step)

    def approve(self, slug: str, submission_id: UUID, actor_id: UUID) -> None:
        if slug not in self.approved:
            self._approved(project=slug, submission_id=submission_id, actor_id=actor_id)

    @event(ProjectApproved)
    def _approved(self, project: str, submission_id: UUID, actor_id: UUID) -> None:
        self.approved.add(project)
        self.approved_numbers.add(self.numbers[project])
