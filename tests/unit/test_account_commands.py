"""Account commands on the in-memory log with fakes of the ports: given accounts, when one
command (creating, editing, deactivating, assigning a trainer), then the events recorded,
the error raised, or what the fakes were left holding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any
from uuid import UUID, uuid4

import pytest

import application.eventstore
from application.accounts import AccountCommands, UserChanges
from application.authorization import Actor
from application.eventstore import EventStore
from domain.accounts import EmailClaim, SuperadminChanges
from domain.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from domain.roles import Role, Track
from domain.students import Student
from domain.trainers import TrainerCapacity
from tests.unit.fakes import Credentials, Hasher, Sessions, event_names, in_memory_store

PASSWORD = "correct horse battery staple"
LATER = datetime.now(UTC) + timedelta(hours=1)


@dataclass
class World:
    store: EventStore
    accounts: AccountCommands
    credentials: Credentials
    sessions: Sessions
    numbers: Iterator[int]

    def email(self, name: str) -> str:
        return f"{name}{next(self.numbers)}@example.com"

    def superadmin(self, name: str = "root") -> Actor:
        created = self.accounts.create_administrator(self.email(name), name, PASSWORD,
                                                     Role.SUPERADMIN)
        return Actor(created.account_id, Role.SUPERADMIN)

    def admin(self, name: str = "adm") -> Actor:
        created = self.accounts.create_administrator(self.email(name), name, PASSWORD,
                                                     Role.ADMIN)
        return Actor(created.account_id, Role.ADMIN)

    def account(self, role: Role, name: str = "someone",
                track: Track | None = None) -> UUID:
        return self.accounts.create_account(self.admin(), self.email(name), name, PASSWORD,
                                            role, track).account_id

    def student(self, name: str = "stu", track: Track = Track.FULL_STACK) -> UUID:
        return self.accounts.register_student(self.email(name), name, PASSWORD,
                                              track).account_id

    def events(self, aggregate_id: UUID) -> list[Any]:
        return list(self.store.events.get(aggregate_id))

    def last(self, aggregate_id: UUID) -> Any:
        return self.events(aggregate_id)[-1]

    def head(self) -> int:
        return self.store.recorder.max_notification_id() or 0

    def session(self, account_id: UUID) -> UUID:
        return self.sessions.create(account_id, uuid4().hex, LATER)


def make_world(store: EventStore, hasher: Any = None, trainer_capacity: int = 20) -> World:
    credentials, sessions = Credentials(), Sessions()
    accounts = AccountCommands(store, credentials, hasher or Hasher(), sessions,
                               trainer_capacity=trainer_capacity)
    return World(store, accounts, credentials, sessions, count(1))


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        yield make_world(store)


def seat(world: World, student: UUID, trainer: UUID) -> None:
    """Given: the student is assigned to the trainer."""
    world.accounts.assign_trainer(world.admin(), student, trainer)


def refused(error: pytest.ExceptionInfo[DomainError], kind: type[DomainError],
            code: str) -> None:
    assert type(error.value) is kind
    assert error.value.code == code


# -- creating accounts ---------------------------------------------------------------------

def test_self_registration_records_an_account_its_email_claim_and_an_enrolment(
        world: World) -> None:
    registered = world.accounts.register_student(" Ada@Example.COM ", "Ada", PASSWORD,
                                                 Track.DATA_PROFESSIONAL)
    [account] = world.events(registered.account_id)
    assert (type(account).__name__, account.email, account.role, account.actor_id) == (
        "Registered", "ada@example.com", "student", registered.account_id)
    [claim] = world.events(EmailClaim.id_for("ada@example.com"))
    assert claim.account_id == registered.account_id
    [enrolled] = world.events(Student.id_for(registered.account_id))
    assert (type(enrolled).__name__, enrolled.track, enrolled.actor_id) == (
        "Enrolled", "DP", registered.account_id)
    assert registered.position == world.head()
    assert world.credentials.hashes == {registered.account_id: f"hashed:{PASSWORD}"}


def test_an_admin_creates_a_student_on_their_own_authority(world: World) -> None:
    admin = world.admin()
    created = world.accounts.create_account(admin, "bea@example.com", "Bea", PASSWORD,
                                            Role.STUDENT, Track.FULL_STACK)
    assert world.last(created.account_id).actor_id == admin.id
    [enrolled] = world.events(Student.id_for(created.account_id))
    assert (enrolled.track, enrolled.actor_id) == ("FSD", admin.id)


def test_an_admin_creates_a_trainer_without_an_enrolment(world: World) -> None:
    created = world.accounts.create_account(world.admin(), "cid@example.com", "Cid",
                                            PASSWORD, Role.TRAINER, Track.FULL_STACK)
    assert world.last(created.account_id).role == "trainer"
    assert world.events(Student.id_for(created.account_id)) == []


@pytest.mark.parametrize(("actor_role", "role", "track", "password", "kind", "code"), [
    (Role.TRAINER, Role.TRAINER, None, PASSWORD, Forbidden, "ROLE_CHANGE_FORBIDDEN"),
    (Role.AUDITOR, Role.STUDENT, Track.FULL_STACK, PASSWORD, Forbidden,
     "ROLE_CHANGE_FORBIDDEN"),
    (Role.ADMIN, Role.SUPERADMIN, None, PASSWORD, Forbidden, "ROLE_CHANGE_FORBIDDEN"),
    (Role.ADMIN, Role.STUDENT, None, PASSWORD, Invalid, "TRACK_REQUIRED"),
    (Role.SUPERADMIN, Role.TRAINER, None, "too short", Invalid, "WEAK_PASSWORD"),
    (Role.SUPERADMIN, Role.TRAINER, None, "dee@example.com", Invalid, "WEAK_PASSWORD"),
])
def test_an_account_that_may_not_be_created_leaves_no_trace(
        world: World, actor_role: Role, role: Role, track: Track | None, password: str,
        kind: type[DomainError], code: str) -> None:
    before = world.head()
    with pytest.raises(DomainError) as error:
        world.accounts.create_account(Actor(uuid4(), actor_role), "dee@example.com", "Dee",
                                      password, role, track)
    refused(error, kind, code)
    assert world.head() == before
    assert world.credentials.hashes == {}


@pytest.mark.parametrize("role", [Role.STUDENT, Role.TRAINER, Role.AUDITOR, Role.ANALYST])
def test_operators_create_only_administrators(world: World, role: Role) -> None:
    with pytest.raises(Invalid) as error:
        world.accounts.create_administrator("eve@example.com", "Eve", PASSWORD, role)
    refused(error, Invalid, "INVALID_ROLE")
    assert world.head() == 0 and world.credentials.hashes == {}


def test_the_first_superadmin_is_their_own_creator(world: World) -> None:
    created = world.accounts.create_administrator("root@example.com", "Root", PASSWORD,
                                                  Role.SUPERADMIN)
    assert event_names(world.store, created.account_id) == ["Registered"]
    registered = world.last(created.account_id)
    assert (registered.role, registered.actor_id) == ("superadmin", created.account_id)
    assert world.events(Student.id_for(created.account_id)) == []


@pytest.mark.parametrize("how", ["operator", "administrator"])
def test_a_taken_email_is_refused_to_staff_and_its_password_kept(world: World,
                                                                  how: str) -> None:
    owner = world.student("fay")
    email = world.last(owner).email
    before = world.head()
    with pytest.raises(Conflict) as error:
        if how == "operator":
            world.accounts.create_administrator(email.upper(), "Fay", "another password",
                                                Role.ADMIN)
        else:
            world.accounts.create_account(Actor(uuid4(), Role.ADMIN), email, "Fay",
                                          "another password", Role.TRAINER, None)
    refused(error, Conflict, "EMAIL_TAKEN")
    assert world.head() == before
    assert world.credentials.hashes == {owner: f"hashed:{PASSWORD}"}


class CountingHasher(Hasher):
    def __init__(self) -> None:
        self.hashed: list[str] = []

    def hash(self, password: str) -> str:
        self.hashed.append(password)
        return super().hash(password)


def test_registering_a_taken_email_again_hashes_but_changes_no_password() -> None:
    with in_memory_store() as store:
        hasher = CountingHasher()
        world = make_world(store, hasher)
        first = world.accounts.register_student("gil@example.com", "Gil", PASSWORD,
                                                Track.FULL_STACK)
        again = world.accounts.register_student("GIL@example.com", "Mallory",
                                                "mallory's password", Track.DATA_PROFESSIONAL)
        assert again.account_id != first.account_id
        assert hasher.hashed == [PASSWORD, "mallory's password"]  # the same work either way
        assert world.credentials.hashes == {first.account_id: f"hashed:{PASSWORD}"}
        attempted = world.last(first.account_id)
        assert (type(attempted).__name__, attempted.actor_id) == ("RegistrationAttempted",
                                                                  None)
        assert again.position == world.head()
        assert world.store.load(Student, Student.id_for(first.account_id)).track is (
            Track.FULL_STACK)


class RacingHasher(Hasher):
    """While the first password is hashed, someone else registers the same address."""

    def __init__(self, store: EventStore, email: str) -> None:
        self.rival = make_world(store)
        self.email = email
        self.winner: UUID | None = None

    def hash(self, password: str) -> str:
        if self.winner is None:
            self.winner = self.rival.accounts.register_student(
                self.email, "Winner", "the winner's password", Track.FULL_STACK).account_id
        return super().hash(password)


def test_losing_a_registration_race_looks_like_a_new_account_and_keeps_no_hash() -> None:
    with in_memory_store() as store:
        hasher = RacingHasher(store, "hal@example.com")
        world = make_world(store, hasher)
        answer = world.accounts.register_student("hal@example.com", "Hal", PASSWORD,
                                                 Track.DATA_PROFESSIONAL)
        assert hasher.winner is not None and answer.account_id != hasher.winner
        assert event_names(store, hasher.winner) == ["Registered", "RegistrationAttempted"]
        assert world.credentials.hashes == {}  # the loser's hash is gone
        assert hasher.rival.credentials.hashes == {
            hasher.winner: "hashed:the winner's password"}


def test_an_administrator_losing_a_registration_race_is_told_the_email_is_taken() -> None:
    with in_memory_store() as store:
        hasher = RacingHasher(store, "ivy@example.com")
        world = make_world(store, hasher)
        with pytest.raises(Conflict) as error:
            world.accounts.create_account(Actor(uuid4(), Role.ADMIN), "ivy@example.com",
                                          "Ivy", PASSWORD, Role.TRAINER, None)
        refused(error, Conflict, "EMAIL_TAKEN")
        assert hasher.winner is not None
        assert event_names(store, hasher.winner) == ["Registered"]
        assert world.credentials.hashes == {}


def test_a_registration_the_log_cannot_store_keeps_no_password_hash(world: World) -> None:
    with pytest.raises(Invalid) as error:
        world.accounts.register_student("jo@example.com", "Jo\x00", PASSWORD,
                                        Track.FULL_STACK)
    refused(error, Invalid, "UNSTORABLE_TEXT")
    assert world.head() == 0
    assert world.credentials.hashes == {}


# -- profiles ------------------------------------------------------------------------------------

def test_a_user_renames_themselves(world: World) -> None:
    me = world.student("kai")
    position = world.accounts.update_profile(Actor(me, Role.STUDENT), "Kai Lee")
    updated = world.last(me)
    assert (type(updated).__name__, updated.name, updated.actor_id) == (
        "ProfileUpdated", "Kai Lee", me)
    assert position == world.head()


def test_a_deactivated_user_cannot_rename_themselves(world: World) -> None:
    me = world.student("lou")
    world.accounts.deactivate(world.superadmin(), me, "left")
    with pytest.raises(Conflict) as error:
        world.accounts.update_profile(Actor(me, Role.STUDENT), "Lou B")
    refused(error, Conflict, "ACCOUNT_INACTIVE")
    assert event_names(world.store, me) == ["Registered", "Deactivated"]


# -- administrators editing accounts ---------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.STUDENT, Role.TRAINER, Role.AUDITOR, Role.ANALYST])
def test_only_administrators_edit_other_users(world: World, role: Role) -> None:
    target = world.student()
    with pytest.raises(Forbidden) as error:
        world.accounts.update_user(Actor(uuid4(), role), target, UserChanges(name="X"))
    refused(error, Forbidden, "PERMISSION_DENIED")
    assert event_names(world.store, target) == ["Registered"]


def test_an_admin_renames_a_user_whose_sessions_stay(world: World) -> None:
    admin, target = world.admin(), world.student("max")
    session = world.session(target)
    position = world.accounts.update_user(admin, target, UserChanges(name="Max Moe"))
    updated = world.last(target)
    assert (type(updated).__name__, updated.name, updated.actor_id) == (
        "ProfileUpdated", "Max Moe", admin.id)
    assert position == world.head()
    assert world.sessions.is_active(session, target)


def test_an_admin_deactivates_a_student_and_frees_their_trainers_seat(world: World) -> None:
    admin, trainer, target = world.admin(), world.account(Role.TRAINER), world.student()
    seat(world, target, trainer)
    session = world.session(target)
    world.accounts.update_user(admin, target, UserChanges(is_active=False, reason="left"))
    deactivated = world.last(target)
    assert (type(deactivated).__name__, deactivated.reason, deactivated.actor_id) == (
        "Deactivated", "left", admin.id)
    unassigned = world.last(Student.id_for(target))
    assert (type(unassigned).__name__, unassigned.previous_trainer_id, unassigned.reason) == (
        "TrainerUnassigned", trainer, "account deactivated")
    released = world.last(TrainerCapacity.id_for(trainer))
    assert (type(released).__name__, released.student_account_id) == ("StudentReleased",
                                                                      target)
    assert not world.sessions.is_active(session, target)


def test_an_admin_reactivates_an_account_with_a_default_reason(world: World) -> None:
    admin, target = world.admin(), world.student()
    world.accounts.update_user(admin, target, UserChanges(is_active=False))
    world.accounts.update_user(admin, target, UserChanges(is_active=True))
    deactivated, reactivated = world.events(target)[-2:]
    assert type(deactivated).__name__ == "Deactivated"
    assert (type(reactivated).__name__, reactivated.reason, reactivated.actor_id) == (
        "Reactivated", "updated by administrator", admin.id)
    assert world.store.load(Student, Student.id_for(target)).trainer_id is None


@pytest.mark.parametrize("changes", [
    UserChanges(role=Role.AUDITOR, reason="moved to audit"),
    UserChanges(is_active=False, reason="left"),
], ids=["role", "deactivation"])
def test_a_trainer_with_students_keeps_role_and_status(world: World,
                                                       changes: UserChanges) -> None:
    admin, trainer, student = world.admin(), world.account(Role.TRAINER), world.student()
    seat(world, student, trainer)
    before = world.head()
    with pytest.raises(Conflict) as error:
        world.accounts.update_user(admin, trainer, changes)
    refused(error, Conflict, "TRAINER_HAS_STUDENTS")
    assert error.value.details == {"students": 1}
    assert world.head() == before


def test_a_student_made_a_trainer_leaves_their_trainer_and_their_tokens(world: World) -> None:
    admin, trainer, target = world.admin(), world.account(Role.TRAINER), world.student()
    seat(world, target, trainer)
    session = world.session(target)
    world.accounts.update_user(admin, target, UserChanges(role=Role.TRAINER, reason="hired"))
    changed = world.last(target)
    assert (type(changed).__name__, changed.old_role, changed.new_role, changed.reason,
            changed.actor_id) == ("RoleChanged", "student", "trainer", "hired", admin.id)
    unassigned = world.last(Student.id_for(target))
    assert (type(unassigned).__name__, unassigned.reason) == ("TrainerUnassigned",
                                                              "no longer a student")
    assert type(world.last(TrainerCapacity.id_for(trainer))).__name__ == "StudentReleased"
    assert not world.sessions.is_active(session, target)


def test_a_trainer_made_a_student_is_enrolled_on_the_given_track(world: World) -> None:
    admin, target = world.admin(), world.account(Role.TRAINER)
    world.accounts.update_user(admin, target, UserChanges(role=Role.STUDENT,
                                                          track=Track.DATA_PROFESSIONAL))
    assert world.last(target).new_role == "student"
    [enrolled] = world.events(Student.id_for(target))
    assert (type(enrolled).__name__, enrolled.account_id, enrolled.track,
            enrolled.actor_id) == ("Enrolled", target, "DP", admin.id)


def test_a_trainer_made_a_student_needs_a_track(world: World) -> None:
    target = world.account(Role.TRAINER)
    with pytest.raises(Invalid) as error:
        world.accounts.update_user(world.admin(), target, UserChanges(role=Role.STUDENT))
    refused(error, Invalid, "TRACK_REQUIRED")
    assert event_names(world.store, target) == ["Registered"]
    assert world.events(Student.id_for(target)) == []


def test_a_former_student_made_a_student_again_keeps_their_enrolment(world: World) -> None:
    admin, target = world.admin(), world.student(track=Track.FULL_STACK)
    world.accounts.update_user(admin, target, UserChanges(role=Role.TRAINER))
    world.accounts.update_user(admin, target, UserChanges(role=Role.STUDENT,
                                                          track=Track.DATA_PROFESSIONAL))
    assert event_names(world.store, Student.id_for(target)) == ["Enrolled", "TrackChanged"]
    assert world.last(target).new_role == "student"


def test_an_admin_moves_a_student_to_another_track(world: World) -> None:
    admin, target = world.admin(), world.student(track=Track.FULL_STACK)
    session = world.session(target)
    world.accounts.update_user(admin, target, UserChanges(track=Track.DATA_PROFESSIONAL,
                                                          reason="asked to switch"))
    changed = world.last(Student.id_for(target))
    assert (type(changed).__name__, changed.old_track, changed.new_track, changed.reason,
            changed.actor_id) == ("TrackChanged", "FSD", "DP", "asked to switch", admin.id)
    assert event_names(world.store, target) == ["Registered"]
    assert world.sessions.is_active(session, target)  # same role, still active


@pytest.mark.parametrize("changes", [
    UserChanges(track=Track.FULL_STACK),
    UserChanges(role=Role.TRAINER, track=Track.FULL_STACK),
], ids=["trainer", "student-made-trainer"])
def test_only_students_have_a_track(world: World, changes: UserChanges) -> None:
    admin = world.admin()
    target = world.account(Role.TRAINER) if changes.role is None else world.student()
    before = world.head()
    with pytest.raises(Invalid) as error:
        world.accounts.update_user(admin, target, changes)
    refused(error, Invalid, "NOT_A_STUDENT")
    assert world.head() == before


class SteppingTime:
    """Monotonic time that moves only when a retry sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.mark.parametrize("changes", [
    UserChanges(track=Track.DATA_PROFESSIONAL, is_active=False, reason="left"),
    UserChanges(role=Role.TRAINER, is_active=False, reason="left"),
], ids=["track", "role"])
def test_an_edit_that_also_deactivates_a_seated_student(
        world: World, monkeypatch: pytest.MonkeyPatch, changes: UserChanges) -> None:
    admin, trainer, target = world.admin(), world.account(Role.TRAINER), world.student()
    seat(world, target, trainer)
    monkeypatch.setattr(application.eventstore, "time", SteppingTime())
    world.accounts.update_user(admin, target, changes)
    assert event_names(world.store, target)[-1] == "Deactivated"
    assert event_names(world.store, TrainerCapacity.id_for(trainer))[-1] == "StudentReleased"
    assert world.store.load(Student, Student.id_for(target)).trainer_id is None


def test_a_superadmin_demotes_another_through_the_superadmin_guard(world: World) -> None:
    root, other = world.superadmin("root"), world.superadmin("other")
    world.accounts.update_user(root, other.id, UserChanges(role=Role.ADMIN, reason="rota"))
    assert world.last(other.id).new_role == "admin"
    opened, removed = world.events(SuperadminChanges.ID)
    assert type(opened).__name__ == "Opened"
    assert (type(removed).__name__, removed.account_id, removed.actor_id) == (
        "Removed", other.id, root.id)


def test_renaming_a_superadmin_needs_no_guard(world: World) -> None:
    root, other = world.superadmin("root"), world.superadmin("other")
    world.accounts.update_user(root, other.id, UserChanges(name="Other Name"))
    assert world.last(other.id).name == "Other Name"
    assert world.events(SuperadminChanges.ID) == []


def test_a_superadmin_demoted_meanwhile_cannot_demote_another(world: World) -> None:
    root, stale, other = world.superadmin("root"), world.superadmin("stale"), world.superadmin()
    world.accounts.update_user(root, stale.id, UserChanges(role=Role.ADMIN))
    with pytest.raises(Forbidden) as error:  # `stale` still carries a superadmin's token
        world.accounts.update_user(stale, other.id, UserChanges(role=Role.ADMIN))
    refused(error, Forbidden, "SUPERADMIN_REQUIRED")
    assert event_names(world.store, other.id) == ["Registered"]
    assert event_names(world.store, SuperadminChanges.ID) == ["Opened", "Removed"]


# -- deleting (deactivating) accounts ----------------------------------------------------------

def test_only_a_superadmin_deletes_users(world: World) -> None:
    target = world.student()
    with pytest.raises(Forbidden) as error:
        world.accounts.deactivate(world.admin(), target, "")
    refused(error, Forbidden, "PERMISSION_DENIED")
    assert event_names(world.store, target) == ["Registered"]


def test_a_superadmin_cannot_delete_themselves(world: World) -> None:
    root = world.superadmin()
    with pytest.raises(Conflict) as error:
        world.accounts.deactivate(root, root.id, "")
    refused(error, Conflict, "CANNOT_DELETE_SELF")
    assert event_names(world.store, root.id) == ["Registered"]


def test_deleting_an_unknown_user_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as error:
        world.accounts.deactivate(world.superadmin(), uuid4(), "")
    assert error.value.message == "User not found"


def test_a_superadmin_deletes_a_seated_student(world: World) -> None:
    root, trainer, target = world.superadmin(), world.account(Role.TRAINER), world.student()
    seat(world, target, trainer)
    session = world.session(target)
    position = world.accounts.deactivate(root, target, "")
    deactivated = world.last(target)
    assert (type(deactivated).__name__, deactivated.reason, deactivated.actor_id) == (
        "Deactivated", "deleted by superadmin", root.id)
    assert world.last(Student.id_for(target)).reason == "account deactivated"
    assert type(world.last(TrainerCapacity.id_for(trainer))).__name__ == "StudentReleased"
    assert position == world.head()
    assert not world.sessions.is_active(session, target)
    assert world.events(SuperadminChanges.ID) == []


def test_deleting_a_trainer_with_students_is_refused(world: World) -> None:
    trainer, student = world.account(Role.TRAINER), world.student()
    seat(world, student, trainer)
    session = world.session(trainer)
    with pytest.raises(Conflict) as error:
        world.accounts.deactivate(world.superadmin(), trainer, "left")
    refused(error, Conflict, "TRAINER_HAS_STUDENTS")
    assert event_names(world.store, trainer) == ["Registered"]
    assert world.sessions.is_active(session, trainer)


def test_each_superadmin_deleted_is_recorded_by_the_guard(world: World) -> None:
    root, first, second = world.superadmin("r"), world.superadmin("a"), world.superadmin("b")
    world.accounts.deactivate(root, first.id, "left")
    world.accounts.deactivate(root, second.id, "left")
    assert event_names(world.store, SuperadminChanges.ID) == ["Opened", "Removed", "Removed"]
    removed = [e.account_id for e in world.events(SuperadminChanges.ID)[1:]]
    assert removed == [first.id, second.id]
    assert event_names(world.store, first.id) == ["Registered", "Deactivated"]


def test_a_deleted_superadmin_cannot_delete_another(world: World) -> None:
    root, gone, other = world.superadmin("r"), world.superadmin("g"), world.superadmin("o")
    world.accounts.deactivate(root, gone.id, "left")
    with pytest.raises(Forbidden) as error:
        world.accounts.deactivate(gone, other.id, "revenge")
    refused(error, Forbidden, "SUPERADMIN_REQUIRED")
    assert event_names(world.store, other.id) == ["Registered"]


# -- trainer assignment ------------------------------------------------------------------------

def test_a_student_is_assigned_a_trainer_with_a_seat_taken(world: World) -> None:
    admin, trainer, student = world.admin(), world.account(Role.TRAINER), world.student()
    position = world.accounts.assign_trainer(admin, student, trainer)
    assigned = world.last(Student.id_for(student))
    assert (type(assigned).__name__, assigned.trainer_id, assigned.previous_trainer_id,
            assigned.actor_id) == ("TrainerAssigned", trainer, None, admin.id)
    opened, taken = world.events(TrainerCapacity.id_for(trainer))
    assert (type(opened).__name__, opened.trainer_id, opened.limit) == ("Opened", trainer, 20)
    assert (type(taken).__name__, taken.student_account_id) == ("StudentTaken", student)
    assert position == world.head()


def test_a_student_moves_to_another_trainer(world: World) -> None:
    admin = world.admin()
    first, second, student = (world.account(Role.TRAINER), world.account(Role.TRAINER),
                              world.student())
    world.accounts.assign_trainer(admin, student, first)
    world.accounts.assign_trainer(admin, student, second)
    unassigned, assigned = world.events(Student.id_for(student))[-2:]
    assert (type(unassigned).__name__, unassigned.reason) == ("TrainerUnassigned",
                                                              "moved to another trainer")
    assert (assigned.trainer_id, assigned.previous_trainer_id) == (second, first)
    assert event_names(world.store, TrainerCapacity.id_for(first)) == [
        "Opened", "StudentTaken", "StudentReleased"]
    assert event_names(world.store, TrainerCapacity.id_for(second)) == [
        "Opened", "StudentTaken"]


def test_assigning_the_same_trainer_again_records_nothing(world: World) -> None:
    admin, trainer, student = world.admin(), world.account(Role.TRAINER), world.student()
    world.accounts.assign_trainer(admin, student, trainer)
    before = world.head()
    assert world.accounts.assign_trainer(admin, student, trainer) == 0
    assert world.head() == before


def test_a_full_trainer_takes_no_more_students() -> None:
    with in_memory_store() as store:
        world = make_world(store, trainer_capacity=1)
        admin, trainer = world.admin(), world.account(Role.TRAINER)
        first, second = world.student("a"), world.student("b")
        world.accounts.assign_trainer(admin, first, trainer)
        with pytest.raises(Conflict) as error:
            world.accounts.assign_trainer(admin, second, trainer)
        refused(error, Conflict, "TRAINER_AT_CAPACITY")
        assert error.value.details == {"limit": 1}
        assert event_names(store, Student.id_for(second)) == ["Enrolled"]


@pytest.fixture
def cast(world: World) -> dict[str, Any]:
    """Every kind of account an assignment may name."""
    root = world.superadmin()
    people: dict[str, Any] = {
        "admin": world.admin(), "unknown": uuid4(),
        "student": world.student(), "inactive student": world.student(),
        "trainer": world.account(Role.TRAINER), "inactive trainer": world.account(Role.TRAINER),
        "former student": world.student(),
    }
    world.accounts.deactivate(root, people["inactive student"], "left")
    world.accounts.deactivate(root, people["inactive trainer"], "left")
    world.accounts.update_user(root, people["former student"], UserChanges(role=Role.TRAINER))
    return people


@pytest.mark.parametrize(("actor", "student", "trainer", "kind", "code", "message"), [
    ("trainer", "student", "trainer", Forbidden, "PERMISSION_DENIED", "Administrators only"),
    ("admin", "unknown", "trainer", NotFound, "NOT_FOUND", "Student not found"),
    ("admin", "trainer", "trainer", NotFound, "NOT_FOUND", "Student not found"),
    ("admin", "former student", "trainer", NotFound, "NOT_FOUND", "Student not found"),
    ("admin", "inactive student", "trainer", Conflict, "ACCOUNT_INACTIVE",
     "The student's account is deactivated"),
    ("admin", "student", "unknown", NotFound, "NOT_FOUND", "Trainer not found"),
    ("admin", "student", "inactive student", NotFound, "NOT_FOUND", "Trainer not found"),
    ("admin", "student", "inactive trainer", Conflict, "ACCOUNT_INACTIVE",
     "The trainer's account is deactivated"),
])
def test_an_assignment_needs_an_active_student_and_an_active_trainer(
        world: World, cast: dict[str, Any], actor: str, student: str, trainer: str,
        kind: type[DomainError], code: str, message: str) -> None:
    by = cast[actor] if isinstance(cast[actor], Actor) else Actor(cast[actor], Role.TRAINER)
    before = world.head()
    with pytest.raises(DomainError) as error:
        world.accounts.assign_trainer(by, cast[student], cast[trainer])
    refused(error, kind, code)
    assert error.value.message == message
    assert world.head() == before
