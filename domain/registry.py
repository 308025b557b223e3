"""Every aggregate type by its public name, for auditors and the event stream."""

from __future__ import annotations

from eventsourcing.domain import Aggregate

from domain.accounts import (
    Account,
    EmailClaim,
    IdentityClaim,
    ResetRequests,
    SuperadminChanges,
)
from domain.curriculum import Curriculum
from domain.payments import Payment
from domain.progress import Progress
from domain.quizzes import Attempt, Quiz
from domain.repositories import Repository
from domain.students import Student
from domain.submissions import Submission
from domain.trainers import TrainerCapacity
from domain.workspaces import Workspace

AGGREGATES: dict[str, type[Aggregate]] = {
    "account": Account,
    "email-claim": EmailClaim,
    "identity-claim": IdentityClaim,
    "password-reset-requests": ResetRequests,
    "superadmin-changes": SuperadminChanges,
    "student": Student,
    "trainer-capacity": TrainerCapacity,
    "curriculum": Curriculum,
    "progress": Progress,
    "submission": Submission,
    "quiz": Quiz,
    "attempt": Attempt,
    "payment": Payment,
    "repository": Repository,
    "workspace": Workspace,
}
NAMES: dict[type[Aggregate], str] = {cls: name for name, cls in AGGREGATES.items()}


def event_classes() -> list[tuple[str, type]]:
    """(aggregate name, event class) for every event the domain defines."""
    found = []
    for name, aggregate in AGGREGATES.items():
        for attribute in vars(aggregate).values():
            if (isinstance(attribute, type) and issubclass(attribute, Aggregate.Event)
                    and attribute.__qualname__.startswith(aggregate.__name__ + ".")
                    and attribute.__name__ not in ("Event", "Created")):
                found.append((name, attribute))
    return found
