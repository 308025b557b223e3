"""Sealing personal fields in the log: the library's mapper, with every personal field
(domain/privacy.py says which) encrypted under its person's key on the way in, and opened,
or shown as erased once the key is destroyed, on the way out. Every reader decodes events
through it, so read models, history, the events feed, exports and rebuilds agree."""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

from application.ports import PersonalCipher
from domain.privacy import ERASED, personal_fields, stream_class, subject_in, subject_of

SEALED = "sealed"

# Set by the store while it records: the person each pending event is about.
subjects: ContextVar[Mapping[int, UUID] | None] = ContextVar("subjects", default=None)


class PersonalDataMapper(Mapper[UUID]):
    """The library's mapper, with personal fields sealed on the way in and opened (or
    shown as erased) on the way out."""

    def __init__(self, cipher: PersonalCipher, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.personal = cipher

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = personal_fields(type(domain_event))
        if fields:
            # The store says whose stream it is; an event saved past it names its person
            # itself, or is refused.
            subject = (subjects.get() or {}).get(id(domain_event)) or subject_in(
                vars(domain_event), stream_class(type(domain_event)))
            if subject is None:
                raise ValueError(f"{type(domain_event).__qualname__} holds personal data "
                                 "but its stream names no person")
            state = dict(vars(domain_event))
            for name in fields:
                if isinstance(state.get(name), str):
                    state[name] = {SEALED: self.personal.seal(subject, state[name])}
            domain_event = _with_state(domain_event, state)
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        fields = personal_fields(type(domain_event))
        if fields:
            state = vars(domain_event)
            for name in fields:
                value = state.get(name)
                if isinstance(value, dict) and isinstance(value.get(SEALED), str):
                    opened = self.personal.open(value[SEALED])
                    state[name] = ERASED if opened is None else opened
        return domain_event


def _with_state(event: Any, state: dict[str, Any]) -> Any:
    copy = object.__new__(type(event))
    object.__setattr__(copy, "__dict__", state)
    return copy


def recording(objs: tuple[Any, ...]) -> dict[int, UUID]:
    """The person each pending event of these aggregates is about, for the mapper."""
    found: dict[int, UUID] = {}
    for obj in objs:
        subject = subject_of(obj) if obj is not None else None
        if subject is not None:
            for event in obj.pending_events:
                found[id(event)] = subject
    return found


def plaintext_fields(topic: str, state: Mapping[str, Any]) -> list[str]:
    """The personal fields a stored event's state holds as plaintext (not sealed)."""
    return [name for name in personal_fields(resolve_topic(topic))
            if isinstance(state.get(name), str)]
