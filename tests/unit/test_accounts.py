"""Account and Student aggregates: given events, when a command, then events or an error."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.accounts import Account, EmailClaim, check_password_policy, normalise_email
from domain.errors import Conflict, Invalid
from domain.roles import Role, Track
from domain.students import Student


def new_account(role: Role = Role.STUDENT) -> Account:
    account_id = uuid4()
    account = Account(id=account_id, email="ann@example.com", name="Ann", role=role.value,
                      actor_id=account_id)
    account.collect_events()
    return account


def test_registration_records_who_and_what_but_no_secret() -> None:
    account_id = uuid4()
    account = Account(id=account_id, email="ann@example.com", name="Ann", role="student",
                      actor_id=account_id)
    [registered] = account.collect_events()
    assert isinstance(registered, Account.Registered)
    assert registered.actor_id == account_id
    assert account.role is Role.STUDENT and account.active and not account.email_verified
    fields = set(vars(registered))
    assert not any("password" in f or "token" in f or "hash" in f for f in fields)


def test_profile_update_emits_only_on_change() -> None:
    account = new_account()
    account.update_profile("Ann", actor_id=account.id)
    assert account.collect_events() == []
    account.update_profile("Ann B", actor_id=account.id)
    [event] = account.collect_events()
    assert isinstance(event, Account.ProfileUpdated) and event.name == "Ann B"


def test_role_change_records_old_new_actor_and_reason() -> None:
    account, admin = new_account(), uuid4()
    account.change_role(Role.TRAINER, actor_id=admin, reason="hired")
    [event] = account.collect_events()
    assert isinstance(event, Account.RoleChanged)
    assert (event.old_role, event.new_role, event.actor_id, event.reason) == (
        "student", "trainer", admin, "hired")
    assert account.role is Role.TRAINER


def test_deactivated_account_refuses_changes_until_reactivated() -> None:
    account, admin = new_account(), uuid4()
    account.deactivate(actor_id=admin, reason="left")
    account.deactivate(actor_id=admin, reason="again")
    assert [type(e) for e in account.collect_events()] == [Account.Deactivated]
    with pytest.raises(Conflict) as error:
        account.update_profile("New", actor_id=account.id)
    assert error.value.code == "ACCOUNT_INACTIVE"
    account.reactivate(actor_id=admin, reason="back")
    account.update_profile("New", actor_id=account.id)
    assert [type(e) for e in account.collect_events()] == [
        Account.Reactivated, Account.ProfileUpdated]


def test_email_verification_is_recorded_once() -> None:
    account = new_account()
    account.verify_email(actor_id=account.id)
    account.verify_email(actor_id=account.id)
    assert [type(e) for e in account.collect_events()] == [Account.EmailVerified]


def test_email_claim_ids_collide_for_the_same_address_in_any_case() -> None:
    assert EmailClaim.id_for("Ann@Example.com ") == EmailClaim.id_for("ann@example.com")
    assert EmailClaim.id_for("ann@example.com") != EmailClaim.id_for("bob@example.com")
    claim = EmailClaim(email="ann@example.com", account_id=uuid4())
    assert claim.id == EmailClaim.id_for("ann@example.com")
    assert normalise_email("  A@B.C ") == "a@b.c"


@pytest.mark.parametrize("password", ["short", "x" * 129, "ann@example.com"])
def test_password_policy_refuses_weak_passwords(password: str) -> None:
    with pytest.raises(Invalid) as error:
        check_password_policy(password, "ann@example.com")
    assert error.value.code == "WEAK_PASSWORD"


def test_password_policy_accepts_a_passphrase() -> None:
    check_password_policy("correct horse battery staple", "ann@example.com")


def test_student_trainer_assignment_and_release() -> None:
    account_id, admin, t1, t2 = uuid4(), uuid4(), uuid4(), uuid4()
    student = Student(account_id=account_id, track=Track.FULL_STACK.value, actor_id=account_id)
    assert student.id == Student.id_for(account_id)
    student.collect_events()
    student.assign_trainer(trainer_id=t1, previous_trainer_id=None, actor_id=admin)
    student.unassign_trainer(actor_id=admin, reason="moved")
    student.assign_trainer(trainer_id=t2, previous_trainer_id=t1, actor_id=admin)
    events = student.collect_events()
    assert [type(e) for e in events] == [
        Student.TrainerAssigned, Student.TrainerUnassigned, Student.TrainerAssigned]
    assert student.trainer_id == t2
    student.unassign_trainer(actor_id=admin, reason="x")
    student.unassign_trainer(actor_id=admin, reason="x")
    assert len(student.collect_events()) == 1 and student.trainer_id is None


def test_track_change_only_when_different() -> None:
    account_id, admin = uuid4(), uuid4()
    student = Student(account_id=account_id, track="DP", actor_id=account_id)
    student.collect_events()
    student.change_track(Track.DATA_PROFESSIONAL, actor_id=admin, reason="same")
    assert student.collect_events() == []
    student.change_track(Track.FULL_STACK, actor_id=admin, reason="switch")
    [event] = student.collect_events()
    assert isinstance(event, Student.TrackChanged)
    assert (event.old_track, event.new_track) == ("DP", "FSD")


def test_access_grant_and_revoke_commute() -> None:
    account_id, payment = uuid4(), uuid4()
    for order in (("grant", "revoke"), ("revoke", "grant")):
        student = Student(account_id=account_id, track="DP", actor_id=account_id)
        for step in order:
            if step == "grant":
                student.grant_access(payment)
            else:
                student.revoke_access(payment, reason="refunded")
        assert student.paid_by is None, order
