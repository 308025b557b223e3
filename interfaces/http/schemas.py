"""Shapes shared by routers: strict request bodies and the user representation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from domain.accounts import MAX_NAME_LENGTH


class Body(BaseModel):
    """Request bodies reject unknown fields instead of silently ignoring them."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
# Bounded so hashing a huge input can't be used to burn CPU; the policy has its own rule.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=False)]
Email = Annotated[EmailStr, Field(max_length=254)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class Detail(BaseModel):
    detail: str


class UserOut(BaseModel):
    id: UUID
    email: str
    name: str
    role: str
    track: str | None = None
    is_active: bool = True
    email_verified: bool = False
    trainer_id: UUID | None = None
    student_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> UserOut:
        data = dict(row)
        if data.get("role") != "trainer":
            data["student_count"] = None
        return cls.model_validate(data)
