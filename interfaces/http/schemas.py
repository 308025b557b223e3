"""Shapes shared by routers: strict request bodies and the user representation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
)

from domain.accounts import MAX_NAME_LENGTH
from domain.text import first_problem, line_problem


class Body(BaseModel):
    """Request bodies reject unknown fields instead of silently ignoring them, and any
    text (in any field, nested lists and maps, keys included) that cannot be stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Nested bodies check their own fields; this sees every other value once.
        if not isinstance(value, BaseModel) and (found := first_problem(value)):
            where, reason = found
            raise ValueError(f"{reason} (at {where})" if where else reason)
        return value


def _one_line(value: str) -> str:
    if reason := line_problem(value):
        raise ValueError(reason)
    return value


Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH),
                 AfterValidator(_one_line)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200),
                  AfterValidator(_one_line)]
# Bounded so hashing a huge input can't be used to burn CPU; the policy has its own rule.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024, strip_whitespace=False)]
Email = Annotated[EmailStr, Field(max_length=254)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class Detail(BaseModel):
    detail: str


class AcceptedOut(BaseModel):
    """A command is stored, but the read model has not caught up within the wait: read
    at `position` (send it as X-Position)."""

    detail: str
    position: int


class ReceivedOut(BaseModel):
    """A webhook delivery is stored (or was already)."""

    received: bool
    duplicate: bool = False


class ErrorBody(BaseModel):
    code: str = Field(description="Stable, machine-readable, e.g. VALIDATION_ERROR")
    message: str
    details: dict[str, Any] = Field(default_factory=dict,
                                    description="Per field (or other) explanations")


class ErrorOut(BaseModel):
    """Every error answer, whatever its status."""

    status: str = Field("error", pattern="^error$")
    error: ErrorBody


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
