"""Who may do what: the one place the application asks before it acts.

Routers authenticate and pass the principal on; every rule about roles, ownership and
paid access is here, so a rule is written once and a change to it is made once.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from application.eventstore import EventStore
from domain.errors import Forbidden, PaymentRequired
from domain.roles import PRIVILEGED_ROLES, Role
from domain.students import Student


@dataclass(frozen=True)
class Actor:
    """The authenticated user a command is issued by."""

    id: UUID
    role: Role


# Auditors and analysts read; of all commands they may only end or renew their own session
# and change or reset their own password (those do not pass through here).
READ_ONLY_ROLES = frozenset({Role.AUDITOR, Role.ANALYST})
# Who manages accounts, payments and workspaces.
ADMINISTRATORS = PRIVILEGED_ROLES
# Who reads every learner's records (accounts, submissions, quizzes, attempts, payments,
# history); analysts read only the pseudonymised event stream.
OVERSEERS = ADMINISTRATORS | {Role.AUDITOR}
# Who writes quizzes and reviews submissions (trainers: their own quizzes and students).
AUTHORS = ADMINISTRATORS | {Role.TRAINER}
# Who has a review queue to look at.
REVIEW_QUEUE_READERS = AUTHORS | {Role.AUDITOR}
# Who reads the event stream (CloudEvents, xAPI).
EVENT_READERS = OVERSEERS | {Role.ANALYST}
# Who erases a person (their key destroyed: it cannot be undone).
ERASERS = frozenset({Role.SUPERADMIN})


def oversees(role: Role) -> bool:
    return role in OVERSEERS


def authors(role: Role) -> bool:
    return role in AUTHORS


# -- the read side: whose records a principal may see ----------------------------------------

def may_see_learner(actor: Actor, learner_id: UUID, trainer_id: UUID | None) -> bool:
    """A learner's account and work: the learner, their trainer, and overseers."""
    return (oversees(actor.role) or actor.id == learner_id
            or (actor.role is Role.TRAINER and trainer_id == actor.id))


def follows_a_track(role: str | Role) -> bool:
    """Only students follow a track (and have progress, submissions, a workspace)."""
    return role == Role.STUDENT


def may_see_payment(actor: Actor, student_id: UUID) -> bool:
    """A payment: the student who paid, and overseers."""
    return student_id == actor.id or oversees(actor.role)


def may_author_quizzes(role: Role) -> bool:
    """Whether the role owns or oversees quizzes at all."""
    return oversees(role) or role is Role.TRAINER


def authors_quiz(actor: Actor, owner_id: UUID) -> bool:
    """A quiz's keys, statistics and changes: its owner, and overseers."""
    return oversees(actor.role) or owner_id == actor.id


def trainer_scope(actor: Actor) -> UUID | None:
    """Lists of learners' work a trainer sees are limited to their own (students or
    quizzes); None for anyone else, who is limited otherwise or not at all."""
    return actor.id if actor.role is Role.TRAINER else None


def is_read_only(role: Role) -> bool:
    return role in READ_ONLY_ROLES


def require_may_change(actor: Actor) -> None:
    """Refuse any change of state by a read-only role."""
    if is_read_only(actor.role):
        raise Forbidden("Auditors and analysts change nothing", code="READ_ONLY_ROLE")


def require_may_manage(actor: Actor, target_id: UUID, target_role: Role) -> None:
    """An administrator manages accounts; only a superadmin touches an administrator's or a
    superadmin's account, and nobody manages their own account this way (they use their
    profile), so nobody can deactivate or demote the last superadmin by themselves."""
    if actor.role not in PRIVILEGED_ROLES:
        raise Forbidden("Administrators only", code="PERMISSION_DENIED")
    if target_id == actor.id:
        raise Forbidden("Change your own account through your profile",
                        code="CANNOT_MANAGE_SELF")
    if target_role in PRIVILEGED_ROLES and actor.role is not Role.SUPERADMIN:
        raise Forbidden("Only a superadmin changes an administrator or a superadmin",
                        code="SUPERADMIN_REQUIRED")


class PaidAccess:
    """A student acts on their track's content (progress, submissions and their files, the
    workspace) only while the track is paid for, when enrolment requires payment; a refund
    closes it for every one of those actions at once."""

    def __init__(self, store: EventStore, required: bool) -> None:
        self.store = store
        self.required = required

    def student(self, actor: Actor) -> Student:
        """The acting student, refused unless a student whose access is open."""
        student = self.store.find(Student, Student.id_for(actor.id))
        if student is None or actor.role is not Role.STUDENT:
            raise Forbidden("Only students follow a track", code="NOT_A_STUDENT")
        if self.required and student.paid_by is None:
            raise PaymentRequired("Enrol in your track first: its projects open once paid")
        return student
