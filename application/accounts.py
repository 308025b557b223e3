"""Account commands: registration, profiles, roles, activation and trainer assignment."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from application.authorization import ADMINISTRATORS, Actor, require_may_manage
from application.eventstore import EventStore, retry_on_conflict
from application.ports import CredentialStore, PasswordHasher, SessionStore
from domain.accounts import (
    Account,
    EmailClaim,
    SuperadminChanges,
    check_password_policy,
    claim_email,
    normalise_email,
)
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.roles import Role, Track, check_role_grant, is_staff
from domain.students import Student
from domain.trainers import MAX_STUDENTS_PER_TRAINER, TrainerCapacity


@dataclass(frozen=True)
class Registered:
    account_id: UUID
    position: int


@dataclass(frozen=True)
class UserChanges:
    """An admin's edit of another account; None leaves a field as it is."""

    name: str | None = None
    role: Role | None = None
    track: Track | None = None
    is_active: bool | None = None
    reason: str = ""


def require_staff(actor: Actor) -> None:
    if not is_staff(actor.role):
        raise Forbidden("Administrators only", code="PERMISSION_DENIED")


class AccountCommands:
    def __init__(
        self,
        store: EventStore,
        credentials: CredentialStore,
        hasher: PasswordHasher,
        sessions: SessionStore,
        trainer_capacity: int = MAX_STUDENTS_PER_TRAINER,
    ) -> None:
        self.store = store
        self.credentials = credentials
        self.hasher = hasher
        self.sessions = sessions
        self.trainer_capacity = trainer_capacity

    # -- creating accounts ---------------------------------------------------------------

    def register_student(self, email: str, name: str, password: str, track: Track) -> Registered:
        """Self-registration: always a student, whatever the client asks for."""
        return self._create(email, name, password, Role.STUDENT, track, creator=None,
                            self_registered=True)

    def create_account(
        self, actor: Actor, email: str, name: str, password: str, role: Role, track: Track | None
    ) -> Registered:
        check_role_grant(actor_id=actor.id, actor_role=actor.role, target_id=None,
                         current=None, new=role)
        return self._create(email, name, password, role, track, creator=actor)

    def create_administrator(self, email: str, name: str, password: str, role: Role) -> Registered:
        """For operators at the command line: how the first administrator comes to exist."""
        if role not in ADMINISTRATORS:
            raise Invalid("Only administrator roles are created this way", code="INVALID_ROLE")
        return self._create(email, name, password, role, None, creator=None)

    def _create(
        self, email: str, name: str, password: str, role: Role, track: Track | None,
        creator: Actor | None, self_registered: bool = False,
    ) -> Registered:
        email = normalise_email(email)
        check_password_policy(password, email)
        if role is Role.STUDENT and track is None:
            raise Invalid("A student needs a track", code="TRACK_REQUIRED")
        claim = self.store.find(EmailClaim, EmailClaim.id_for(email))
        if claim is not None and claim.account_id is not None:
            return self._taken(email, password, self_registered)
        account_id = uuid4()
        actor_id = creator.id if creator else account_id
        account = Account(id=account_id, email=email, name=name, role=role.value,
                          actor_id=actor_id)
        claim = claim_email(claim, email, account_id)
        student = (
            Student(account_id=account_id, track=track.value, actor_id=actor_id)
            if role is Role.STUDENT and track is not None else None
        )
        # The hash goes first: an account must never exist without a password. If the
        # events then fail, the orphaned hash belongs to no account and is removed.
        self.credentials.set_password_hash(account_id, self.hasher.hash(password))
        try:
            position = self.store.commit(account, claim, student)
        except IntegrityError:
            self.credentials.forget(account_id)
            return self._taken(email, password, self_registered, hashed=True)
        except BaseException:
            self.credentials.forget(account_id)
            raise
        return Registered(account_id, position)

    def _taken(self, email: str, password: str, self_registered: bool,
               hashed: bool = False) -> Registered:
        """Administrators and operators are told the email is taken. Someone registering
        themselves is answered as if it were new, so the answer says nothing of who has an
        account: the same work is done (the password is hashed, an event recorded) and the
        address's owner is told by email instead."""
        if not self_registered:
            raise Conflict("This email is already registered", code="EMAIL_TAKEN")
        if not hashed:
            self.hasher.hash(password)
        holder = self.store.load(EmailClaim, EmailClaim.id_for(email), "User").account_id
        if holder is None:  # released meanwhile, by an erasure
            raise Conflict("This email was just released; register again", code="EMAIL_TAKEN")

        def command() -> int:
            account = self.store.load(Account, holder, "User")
            account.registration_attempted()
            return self.store.commit(account)

        return Registered(uuid4(), retry_on_conflict(command))

    # -- profile and administration -----------------------------------------------------------

    def update_profile(self, actor: Actor, name: str) -> int:
        def command() -> int:
            account = self.store.load(Account, actor.id, "User")
            account.update_profile(name=name, actor_id=actor.id)
            return self.store.commit(account)

        return retry_on_conflict(command)

    def update_user(self, actor: Actor, target_id: UUID, changes: UserChanges) -> int:
        require_staff(actor)
        reason = changes.reason or "updated by administrator"

        def command() -> tuple[int, bool]:
            account = self.store.load(Account, target_id, "User")
            require_may_manage(actor, account.id, account.role)
            old_role = account.role
            if changes.is_active is True:
                account.reactivate(actor_id=actor.id, reason=reason)
            # One Student instance for every step: a second copy would commit its
            # versions twice and conflict on every retry.
            student = self.store.find(Student, Student.id_for(account.id))
            student, touched = self._change_role_and_track(actor, account, student, changes,
                                                           reason)
            if changes.name is not None:
                account.update_profile(name=changes.name, actor_id=actor.id)
            if changes.is_active is False:
                touched += self._deactivate(actor, account, student, reason)
            revoke = account.role != old_role or not account.active
            guard = self._superadmin_removal(actor, old_role, account)
            return self.store.commit(account, student, *touched, guard), revoke

        position, revoke = retry_on_conflict(command)
        if revoke:
            # Role or status changed: tokens carrying the old role must not stay usable.
            self.sessions.revoke_all(target_id)
        return position

    def _change_role_and_track(
        self, actor: Actor, account: Account, student: Student | None, changes: UserChanges,
        reason: str
    ) -> tuple[Student | None, list[TrainerCapacity]]:
        touched: list[TrainerCapacity] = []
        new_role = changes.role if changes.role is not None else account.role
        if new_role != account.role:
            check_role_grant(actor_id=actor.id, actor_role=actor.role, target_id=account.id,
                             current=account.role, new=new_role)
            if account.role is Role.TRAINER:
                capacity = self.store.find(TrainerCapacity, TrainerCapacity.id_for(account.id))
                if capacity is not None and capacity.load:
                    raise Conflict("Reassign this trainer's students first",
                                   code="TRAINER_HAS_STUDENTS", students=capacity.load)
            if account.role is Role.STUDENT and student is not None:
                touched += self._release_trainer(actor, student, "no longer a student")
            if new_role is Role.STUDENT and student is None:
                if changes.track is None:
                    raise Invalid("A student needs a track", code="TRACK_REQUIRED")
                student = Student(account_id=account.id, track=changes.track.value,
                                  actor_id=actor.id)
            account.change_role(new_role, actor_id=actor.id, reason=reason)
        if changes.track is not None:
            if student is None or account.role is not Role.STUDENT:
                raise Invalid("Only students have a track", code="NOT_A_STUDENT")
            student.change_track(changes.track, actor_id=actor.id, reason=reason)
        return student, touched

    def deactivate(self, actor: Actor, target_id: UUID, reason: str) -> int:
        """Deactivation is the API's "delete": the history stays, the person can't log in."""
        if actor.role is not Role.SUPERADMIN:
            raise Forbidden("Only a superadmin can delete users", code="PERMISSION_DENIED")
        if target_id == actor.id:
            raise Conflict("You cannot delete your own account", code="CANNOT_DELETE_SELF")

        def command() -> int:
            account = self.store.load(Account, target_id, "User")
            require_may_manage(actor, account.id, account.role)
            old_role = account.role
            student = self.store.find(Student, Student.id_for(account.id))
            touched = self._deactivate(actor, account, student,
                                       reason or "deleted by superadmin")
            guard = self._superadmin_removal(actor, old_role, account)
            return self.store.commit(account, student, *touched, guard)

        position = retry_on_conflict(command)
        self.sessions.revoke_all(target_id)
        return position

    def _superadmin_removal(self, actor: Actor, old_role: Role, account: Account
                            ) -> SuperadminChanges | None:
        """When `account` stops being an active superadmin: the change goes through the
        one SuperadminChanges aggregate, and only while its actor still is one."""
        if old_role is not Role.SUPERADMIN or (account.role is Role.SUPERADMIN
                                               and account.active):
            return None
        # The guard first: a removal committed after this read makes ours conflict, and
        # the retry then sees whether the actor was the one removed.
        guard = (self.store.find(SuperadminChanges, SuperadminChanges.ID)
                 or SuperadminChanges())
        current = self.store.load(Account, actor.id, "User")
        if current.role is not Role.SUPERADMIN or not current.active:
            raise Forbidden("Only an active superadmin removes a superadmin",
                            code="SUPERADMIN_REQUIRED")
        guard.removed(account.id, actor.id)
        return guard

    def _deactivate(
        self, actor: Actor, account: Account, student: Student | None, reason: str
    ) -> list[TrainerCapacity]:
        if account.role is Role.TRAINER:
            capacity = self.store.find(TrainerCapacity, TrainerCapacity.id_for(account.id))
            if capacity is not None and capacity.load:
                raise Conflict("Reassign this trainer's students first",
                               code="TRAINER_HAS_STUDENTS", students=capacity.load)
        touched = [] if student is None else self._release_trainer(
            actor, student, "account deactivated")
        account.deactivate(actor_id=actor.id, reason=reason)
        return touched

    def _release_trainer(
        self, actor: Actor, student: Student, reason: str
    ) -> list[TrainerCapacity]:
        if student.trainer_id is None:
            return []
        capacity = self.store.load(TrainerCapacity, TrainerCapacity.id_for(student.trainer_id))
        capacity.release(student.account_id, actor_id=actor.id)
        student.unassign_trainer(actor_id=actor.id, reason=reason)
        return [capacity]

    # -- trainer assignment --------------------------------------------------------------------

    def assign_trainer(self, actor: Actor, student_id: UUID, trainer_id: UUID) -> int:
        """Assign (or move) a student to a trainer, never past the trainer's capacity."""
        require_staff(actor)

        def command() -> int:
            student_account = self.store.load(Account, student_id, "Student")
            student = self.store.find(Student, Student.id_for(student_id))
            if student is None or student_account.role is not Role.STUDENT:
                raise NotFound("Student not found")
            if not student_account.active:
                raise Conflict("The student's account is deactivated", code="ACCOUNT_INACTIVE")
            trainer = self.store.load(Account, trainer_id, "Trainer")
            if trainer.role is not Role.TRAINER:
                raise NotFound("Trainer not found")
            if not trainer.active:
                raise Conflict("The trainer's account is deactivated", code="ACCOUNT_INACTIVE")
            if student.trainer_id == trainer_id:
                return 0
            capacity = self.store.find(
                TrainerCapacity, TrainerCapacity.id_for(trainer_id)
            ) or TrainerCapacity(trainer_id=trainer_id, limit=self.trainer_capacity)
            capacity.take(student_id, actor_id=actor.id)
            previous = student.trainer_id
            released = self._release_trainer(actor, student, "moved to another trainer")
            student.assign_trainer(trainer_id=trainer_id, previous_trainer_id=previous,
                                   actor_id=actor.id)
            return self.store.commit(student, capacity, *released)

        return retry_on_conflict(command)
