"""Shapes shared by routers: strict request bodies and the user representation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, get_args
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from domain.accounts import MAX_NAME_LENGTH, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from domain.text import first_problem


class Body(BaseModel):
    """Request bodies reject unknown fields instead of silently ignoring them, and any
    text (in any field, nested lists and maps, keys included) that cannot be stored.
    Text is kept exactly as sent, and a JSON value must have the type the schema says
    (no 0 for false, no "5" for 5): what the OpenAPI document accepts is what is accepted."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        wrong: list[InitErrorDetails] = []
        for name, field in cls.model_fields.items():
            key = field.alias or name
            value = data.get(key)
            kinds = set(get_args(field.annotation) or (field.annotation,))
            if bool in kinds and int not in kinds and value is not None and (
                    not isinstance(value, bool)):
                wrong.append(InitErrorDetails(type="bool_type", loc=(key,), input=value))
            if int in kinds and bool not in kinds and isinstance(value, bool | str):
                wrong.append(InitErrorDetails(type="int_type", loc=(key,), input=value))
        if wrong:  # reported at each field, as the framework's own type errors are
            raise ValidationError.from_exception_data(cls.__name__, wrong)
        return data

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # Nested bodies check their own fields; this sees every other value once.
        if not isinstance(value, BaseModel) and (found := first_problem(value)):
            where, reason = found
            raise ValueError(f"{reason} (at {where})" if where else reason)
        return value


# A name or a title: one line holding something visible, no control characters (the same
# rule as domain.text.line_problem, written so the OpenAPI document states it).
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x1f\x7f-\x9f\s][^\x00-\x1f\x7f-\x9f]*$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH,
                                        pattern=ONE_LINE)]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=ONE_LINE)]
# Bounded so hashing a huge input can't be used to burn CPU; the policy has its own rule.
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]
NewPassword = Annotated[str, StringConstraints(min_length=MIN_PASSWORD_LENGTH,
                                               max_length=MAX_PASSWORD_LENGTH)]
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
