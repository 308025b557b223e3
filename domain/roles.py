"""Roles, tracks and the rules about who may give which role to whom."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from domain.errors import Forbidden


class Role(StrEnum):
    STUDENT = "student"
    TRAINER = "trainer"
    ADMIN = "admin"
    SUPERADMIN = "superadmin"
    AUDITOR = "auditor"
    ANALYST = "analyst"


class Track(StrEnum):
    DATA_PROFESSIONAL = "DP"
    FULL_STACK = "FSD"


STAFF_ROLES = frozenset({Role.ADMIN, Role.SUPERADMIN})
# Roles only a superadmin may grant, take away or manage.
PRIVILEGED_ROLES = frozenset({Role.ADMIN, Role.SUPERADMIN})


def is_staff(role: Role) -> bool:
    return role in STAFF_ROLES


def check_role_grant(
    *, actor_id: UUID, actor_role: Role, target_id: UUID | None, current: Role | None, new: Role
) -> None:
    """Raise Forbidden unless `actor` may give role `new` to the target.

    `target_id`/`current` are None when the account is being created.
    Nobody changes their own role; admins manage non-privileged accounts and may
    create admins; only a superadmin grants superadmin or alters an admin/superadmin.
    """
    if not is_staff(actor_role):
        raise Forbidden("Only administrators can assign roles", code="ROLE_CHANGE_FORBIDDEN")
    if target_id == actor_id and current != new:
        raise Forbidden("Nobody can change their own role", code="CANNOT_CHANGE_OWN_ROLE")
    if actor_role is Role.SUPERADMIN:
        return
    if new is Role.SUPERADMIN:
        raise Forbidden("Only a superadmin can grant superadmin", code="ROLE_CHANGE_FORBIDDEN")
    if current is not None and current in PRIVILEGED_ROLES and current != new:
        raise Forbidden(
            "Only a superadmin can change an administrator's role", code="ROLE_CHANGE_FORBIDDEN"
        )
