"""The analysts' stream: each stored event's `data` matches the AsyncAPI schema published
for its type, people are pseudonyms, and names and emails are not there."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import jsonschema
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from application.audit import event_data
from domain.privacy import personal_fields
from domain.registry import event_classes
from interfaces.analytics import asyncapi_document, data_schema
from projections.analytics import PERSON_FIELDS, Pseudonymiser
from tests.events.fixtures import fixtures
from tests.unit.fakes import in_memory_store

PSEUDONYMS = Pseudonymiser(b"k" * 32)
FIXTURES = list(fixtures())


def _event(fixture: dict[str, Any]) -> Any:
    with in_memory_store() as store:
        return store.mapper.to_domain_event(StoredEvent(
            originator_id=UUID(fixture["originator_id"]),
            originator_version=fixture["originator_version"], topic=fixture["topic"],
            state=fixture["state"].encode()))


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f["topic"] for f in FIXTURES])
def test_each_stored_event_matches_its_published_schema(fixture: dict[str, Any]) -> None:
    event = _event(fixture)
    data = json.loads(json.dumps(PSEUDONYMS.data(event_data(event),
                                                 personal_fields(type(event))), default=str))
    jsonschema.validate(data, data_schema(type(event)))
    assert not personal_fields(type(event)) & set(data)
    for name in PERSON_FIELDS & set(data):
        assert data[name] is None or data[name].startswith("p-")


def test_the_document_names_every_event_type_with_its_class_version() -> None:
    messages = asyncapi_document("http://127.0.0.1:8000")["components"]["messages"]
    by_name = {m["name"]: m for m in messages.values()}
    for aggregate, cls in event_classes():
        message = by_name[f"apranova.{aggregate}.{cls.__name__}"]
        assert message["x-class-version"] == getattr(cls, "class_version", 1), get_topic(cls)


def test_a_wrong_type_in_data_is_caught_by_the_schema() -> None:
    fixture = next(f for f in FIXTURES if f["topic"].endswith(":Account.Registered"))
    event = _event(fixture)
    data = json.loads(json.dumps(PSEUDONYMS.data(event_data(event),
                                                 personal_fields(type(event))), default=str))
    schema = data_schema(type(event))
    jsonschema.validate(data, schema)
    assert "email" not in schema["properties"]
    assert schema["properties"]["actor_id"]["description"] == "pseudonym"
    for field, wrong in (("actor_id", 7), ("role", ["student"])):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**data, field: wrong}, schema)
