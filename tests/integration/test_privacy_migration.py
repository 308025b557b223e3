"""`apranova privacy migrate`: a log written before personal fields were sealed is copied
into its sealed form, and afterwards holds no plaintext, reads the same, and erases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from application.authorization import Actor
from application.eventstore import EventStore
from domain.accounts import Account, EmailClaim
from domain.privacy import ERASED
from domain.roles import Role, Track
from domain.students import Student
from infrastructure.settings import Settings
from interfaces.cli import app as cli
from tests.conftest import Mailbox, make_settings, new_database, running_server, settings_env


@pytest.fixture
def legacy(smtp: tuple[Mailbox, int], tmp_path: Path) -> Iterator[Settings]:
    with new_database() as url:
        yield make_settings(url, smtp[1], tmp_path)


def _log_holds(url: str, text: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM apranova_events "
                           "WHERE position(convert_to(%s, 'UTF8') IN state) > 0",
                           (text,)).fetchone()
    return int(row[0]) if row else 0


def _events(url: str) -> list[tuple[int, uuid.UUID, int, str]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            "SELECT notification_id, originator_id, originator_version, topic "
            "FROM apranova_events ORDER BY notification_id").fetchall()]


def test_a_plaintext_log_is_sealed_in_place_and_reads_the_same(
    legacy: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = str(legacy.database_url)
    tag = uuid.uuid4().hex[:8]
    email, name = f"old-{tag}@example.com", f"Grace Plaintext {tag}"
    with running_server(legacy) as server:
        # Written as a release before sealing wrote it: no key, no sealing.
        plain = EventStore(env={**server.container.env, "CREATE_TABLE": "n"})
        person = uuid.uuid4()
        account = Account(id=person, email=email, name=name, role=Role.STUDENT.value,
                          actor_id=person)
        student = Student(account_id=person, track=Track.DATA_PROFESSIONAL.value,
                          actor_id=person)
        student.change_track(Track.FULL_STACK, person, f"asked by {name}")
        plain.commit(account, EmailClaim(email=email, account_id=person), student)
        plain.close()
        before = _events(url)
        assert _log_holds(url, email) and _log_holds(url, name)
    # Every process stopped, as the README says; then the migration.
    settings_env(monkeypatch, legacy)
    runner = CliRunner()
    result = runner.invoke(cli, ["privacy", "migrate"])
    assert result.exit_code == 0, result.output
    assert f"{len(before)} events copied, 4 personal fields sealed" in result.output
    assert _events(url) == before  # positions, streams, versions and topics kept
    assert _log_holds(url, email) == 0 and _log_holds(url, name) == 0
    again = runner.invoke(cli, ["privacy", "migrate"])  # nothing left to seal
    assert again.exit_code == 0 and "0 personal fields sealed" in again.output

    with running_server(legacy) as server:
        store = server.container.store
        assert store.load(Account, person).email == email
        verified = runner.invoke(cli, ["projections", "verify"])
        assert verified.exit_code == 0, verified.output
        admin = server.container.accounts.create_administrator(
            f"root-{tag}@example.com", "Root", "correct horse battery staple",
            Role.SUPERADMIN)
        server.container.privacy.erase(Actor(admin.account_id, Role.SUPERADMIN), person,
                                       "request")
        assert store.load(Account, person).name == ERASED
        changed = [e for e in store.events.get(Student.id_for(person))
                   if hasattr(e, "reason")]
        assert [e.reason for e in changed] == [ERASED]
    with psycopg.connect(url) as conn:  # the indexes are the log's own again
        names = {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'apranova_events'")}
    assert names == {"apranova_events_pkey", "apranova_events_notification_id_idx",
                     "apranova_events_topic_idx"}

