"""Events are a permanent format: a payload of every event type as it is stored today
(tests/events/stored/) still loads into today's classes, and every read model that follows
its type applies it. A change of shape needs a new class_version and an upcaster; the old
fixture stays and keeps passing."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from domain.registry import event_classes
from infrastructure.bootstrap import PROJECTIONS, build
from tests.conftest import Mailbox, make_settings, new_database
from tests.events.fixtures import fixtures, path_of


def test_every_event_type_has_a_stored_fixture_of_its_current_version() -> None:
    missing = [get_topic(cls) for _, cls in event_classes()
               if not path_of(get_topic(cls), getattr(cls, "class_version", 1)).exists()]
    assert missing == [], (
        "record them: APRANOVA_RECORD_EVENT_FIXTURES=1 .venv/bin/python -m pytest")


def test_every_fixture_loads_and_every_read_model_turns_it_into_valid_sql(
        smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    """Each fixture is the first event of its type seen anywhere, so fixtures of one
    aggregate do not follow each other: each model's statements are made and planned by
    PostgreSQL (EXPLAIN: checked against today's tables and column types, with the
    fixture's values bound, and not run)."""
    with new_database() as url:
        container = build(make_settings(url, smtp[1], tmp_path))
        try:
            mapper = container.store.mapper
            applied = 0
            with psycopg.connect(url) as conn:
                for fixture in fixtures():
                    stored = StoredEvent(originator_id=UUID(fixture["originator_id"]),
                                         originator_version=fixture["originator_version"],
                                         topic=fixture["topic"],
                                         state=fixture["state"].encode())
                    event = mapper.to_domain_event(stored)
                    assert get_topic(type(event)) == fixture["topic"], fixture["path"]
                    for projection_class in PROJECTIONS:
                        if fixture["topic"] not in projection_class.topics:
                            continue
                        projection = projection_class(view=container.views[projection_class])
                        for sql, params in projection.statements(event):
                            conn.execute(f"EXPLAIN {sql}", params)
                            applied += 1
            assert applied > len(list(fixtures()))
        finally:
            container.close()
