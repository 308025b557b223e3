"""The users read model: accounts with their role, track, trainer and (for trainers) load."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow

from domain.accounts import Account
from domain.privacy import ERASED
from domain.roles import Role
from domain.students import Student
from projections.base import Handler, ReadModel, ReadModelProjection, Statement

FOLLOWED = (
    Account.Registered, Account.ProfileUpdated, Account.RoleChanged, Account.EmailVerified,
    Account.Deactivated, Account.Reactivated, Account.Erased,
    Student.Enrolled, Student.TrackChanged, Student.TrainerAssigned, Student.TrainerUnassigned,
)

COLUMNS = (
    "id, email, name, role, track, is_active, email_verified, trainer_id, student_count, "
    "created_at, updated_at"
)


class UsersView(ReadModel):
    topics = tuple(get_topic(cls) for cls in FOLLOWED)
    tables = ("rm_users",)
    ddl = """
CREATE TABLE IF NOT EXISTS rm_users (
    id uuid PRIMARY KEY,
    student_id uuid UNIQUE,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL,
    track text,
    is_active boolean NOT NULL DEFAULT true,
    email_verified boolean NOT NULL DEFAULT false,
    trainer_id uuid,
    student_count integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_users_role ON rm_users (role, created_at);
CREATE INDEX IF NOT EXISTS rm_users_trainer ON rm_users (trainer_id)
"""

    def get(self, user_id: UUID) -> DictRow | None:
        return self.fetch_one(f"SELECT {COLUMNS} FROM rm_users WHERE id = %s", (user_id,))

    def active_trainers(self, *, offset: int, limit: int) -> tuple[int, list[DictRow]]:
        """Trainers a student can be assigned to, with their load."""
        return self.page(offset=offset, limit=limit, role=Role.TRAINER.value, active=True)

    def page(
        self, *, offset: int, limit: int, role: str | None = None, search: str | None = None,
        active: bool | None = None,
    ) -> tuple[int, list[DictRow]]:
        where, params = ["TRUE"], dict[str, Any]()
        if role is not None:
            where.append("role = %(role)s")
            params["role"] = role
        if active is not None:
            where.append("is_active = %(active)s")
            params["active"] = active
        if search:
            where.append("(email ILIKE %(q)s OR name ILIKE %(q)s)")
            params["q"] = "%" + search.replace("\\", "\\\\").replace("%", r"\%").replace(
                "_", r"\_") + "%"
        return self.page_of("rm_users", COLUMNS, " AND ".join(where), params,
                            "created_at, id", offset, limit)


class UsersProjection(ReadModelProjection):
    name = "users"
    view_class = UsersView

    def handlers(self) -> dict[type, Handler]:
        return {
            Account.Registered: self.registered,
            Account.ProfileUpdated: lambda e: [self._set(e, "name", e.name)],
            Account.RoleChanged: lambda e: [self._set(e, "role", e.new_role)],
            Account.EmailVerified: lambda e: [self._set(e, "email_verified", True)],
            Account.Deactivated: lambda e: [self._set(e, "is_active", False)],
            Account.Reactivated: lambda e: [self._set(e, "is_active", True)],
            # As a rebuild would show them once the person's key is gone.
            Account.Erased: lambda e: [(
                "UPDATE rm_users SET email = %s, name = %s, is_active = false, updated_at = %s "
                "WHERE id = %s", (ERASED, ERASED, e.timestamp, e.originator_id))],
            Student.Enrolled: self.enrolled,
            Student.TrackChanged: lambda e: [self._set_student(e, "track", e.new_track)],
            Student.TrainerAssigned: self.trainer_assigned,
            Student.TrainerUnassigned: self.trainer_unassigned,
        }

    @staticmethod
    def registered(e: Account.Registered) -> Iterable[Statement]:
        yield (
            "INSERT INTO rm_users (id, email, name, role, created_at, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (e.originator_id, e.email, e.name, e.role, e.timestamp, e.timestamp),
        )

    @staticmethod
    def _set(e: Any, column: str, value: Any) -> Statement:
        return (f"UPDATE rm_users SET {column} = %s, updated_at = %s WHERE id = %s",
                (value, e.timestamp, e.originator_id))

    @staticmethod
    def _set_student(e: Any, column: str, value: Any) -> Statement:
        return (f"UPDATE rm_users SET {column} = %s, updated_at = %s WHERE student_id = %s",
                (value, e.timestamp, e.originator_id))

    @staticmethod
    def enrolled(e: Student.Enrolled) -> Iterable[Statement]:
        yield ("UPDATE rm_users SET student_id = %s, track = %s, updated_at = %s WHERE id = %s",
               (e.originator_id, e.track, e.timestamp, e.account_id))

    def trainer_assigned(self, e: Student.TrainerAssigned) -> Iterable[Statement]:
        yield self._set_student(e, "trainer_id", e.trainer_id)
        yield ("UPDATE rm_users SET student_count = student_count + 1 WHERE id = %s",
               (e.trainer_id,))

    def trainer_unassigned(self, e: Student.TrainerUnassigned) -> Iterable[Statement]:
        yield self._set_student(e, "trainer_id", None)
        yield ("UPDATE rm_users SET student_count = student_count - 1 WHERE id = %s",
               (e.previous_trainer_id,))
