"""Who may give which role to whom."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.errors import Forbidden
from domain.roles import Role, check_role_grant

ME, OTHER = uuid4(), uuid4()


@pytest.mark.parametrize("role", list(Role))
def test_nobody_changes_their_own_role(role: Role) -> None:
    for new in Role:
        if new is role:
            continue
        with pytest.raises(Forbidden):
            check_role_grant(actor_id=ME, actor_role=role, target_id=ME, current=role, new=new)


@pytest.mark.parametrize("role", [Role.STUDENT, Role.TRAINER, Role.AUDITOR])
def test_non_staff_cannot_grant_roles(role: Role) -> None:
    with pytest.raises(Forbidden):
        check_role_grant(actor_id=ME, actor_role=role, target_id=None, current=None,
                         new=Role.STUDENT)


@pytest.mark.parametrize("new", [Role.STUDENT, Role.TRAINER, Role.ADMIN, Role.AUDITOR])
def test_admin_creates_non_superadmin_accounts(new: Role) -> None:
    check_role_grant(actor_id=ME, actor_role=Role.ADMIN, target_id=None, current=None, new=new)


def test_admin_cannot_grant_superadmin_or_touch_other_admins() -> None:
    with pytest.raises(Forbidden):
        check_role_grant(actor_id=ME, actor_role=Role.ADMIN, target_id=OTHER,
                         current=Role.STUDENT, new=Role.SUPERADMIN)
    with pytest.raises(Forbidden):
        check_role_grant(actor_id=ME, actor_role=Role.ADMIN, target_id=OTHER,
                         current=Role.ADMIN, new=Role.STUDENT)


def test_superadmin_may_change_anyone_else() -> None:
    for current in Role:
        for new in Role:
            check_role_grant(actor_id=ME, actor_role=Role.SUPERADMIN, target_id=OTHER,
                             current=current, new=new)
