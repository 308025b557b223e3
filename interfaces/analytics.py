"""The AsyncAPI document of the analysts' event stream, from the domain's event classes."""

from __future__ import annotations

import typing
from typing import Annotated, Any

from pydantic import Field, create_model

from domain.privacy import personal_fields
from domain.registry import AGGREGATES, event_classes
from projections.analytics import PERSON_FIELDS, SOURCE

ENVELOPE_FIELDS = frozenset({"originator_id", "originator_version", "timestamp",
                             "originator_topic"})
Pseudonym = Annotated[str | None, Field(description="pseudonym")]


def data_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of an event's `data` as the stream shows it: pydantic's schema of
    the class's own fields, people as pseudonyms, personal fields left out."""
    fields: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(cls).items():
        if name in ENVELOPE_FIELDS or name in personal_fields(cls) or \
                typing.get_origin(hint) is typing.ClassVar:
            continue
        fields[name] = (Pseudonym if name in PERSON_FIELDS else hint, ...)
    return create_model(cls.__qualname__.replace(".", ""), **fields).model_json_schema()


def asyncapi_document(server_url: str) -> dict[str, Any]:
    """AsyncAPI 3.0 for the event stream, generated from the domain's event classes."""
    messages: dict[str, Any] = {}
    for aggregate, cls in event_classes():
        name = f"apranova.{aggregate}.{cls.__name__}"
        messages[name.replace(".", "_")] = {
            "name": name,
            "title": f"{AGGREGATES[aggregate].__name__} {cls.__name__}",
            # The payload's shape version: a change bumps it, with an upcaster for the old.
            "x-class-version": getattr(cls, "class_version", 1),
            "contentType": "application/cloudevents+json",
            "payload": {"type": "object", "required": ["id", "type", "time", "data"],
                        "properties": {
                            "specversion": {"const": "1.0"}, "id": {"type": "string"},
                            "source": {"const": f"{SOURCE}:{aggregate}"},
                            "type": {"const": name}, "subject": {"type": "string"},
                            "time": {"type": "string", "format": "date-time"},
                            "sequence": {"type": "string"},
                            "data": data_schema(cls)}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "ApraNova event stream", "version": "1.0.0",
                 "description": "Every change of state, as CloudEvents 1.0; people are "
                                "pseudonymised."},
        "servers": {"api": {"host": server_url.split("://", 1)[-1], "protocol":
                            server_url.split("://", 1)[0], "pathname": "/api/events/"}},
        "channels": {"events": {"address": "/api/events/", "messages": {
            key: {"$ref": f"#/components/messages/{key}"} for key in messages}}},
        "operations": {"receiveEvents": {"action": "receive",
                                         "channel": {"$ref": "#/channels/events"}}},
        "components": {"messages": messages},
    }
