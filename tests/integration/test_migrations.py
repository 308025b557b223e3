"""Versioned migrations take over a database the first release made, and keep its rows."""

from __future__ import annotations

import importlib
import uuid

import psycopg
import pytest

from infrastructure import migrations
from tests.conftest import new_database


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}


def test_a_database_the_first_release_made_is_upgraded_with_its_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    first = importlib.import_module(
        "infrastructure.migrations.versions.0001_tables_of_the_first_release")
    account = uuid.uuid4()
    with new_database() as url:
        # What the first release did at every start: its tables, no migration records.
        executed: list[str] = []

        class Recorder:
            def execute(self, sql: str) -> None:
                executed.append(sql)

        monkeypatch.setattr(first, "op", Recorder())
        first.upgrade()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(executed[0])
            conn.execute("INSERT INTO auth_credentials (account_id, password_hash) "
                         "VALUES (%s, 'argon2-hash')", (account,))
        assert "alembic_version" not in _tables(url)

        assert migrations.upgrade(url) == migrations.head() == migrations.HEAD == "0005"
        assert {"pm_pending", "idempotency_keys", "alembic_version"} <= _tables(url)
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT password_hash FROM auth_credentials "
                               "WHERE account_id = %s", (account,)).fetchone()
        assert row == ("argon2-hash",)
        assert migrations.upgrade(url) == "0005"  # again: nothing to do


def test_a_new_database_gets_every_table() -> None:
    with new_database() as url:
        assert migrations.upgrade(url) == migrations.head()
        assert {"auth_credentials", "auth_sessions", "auth_one_time_tokens", "pm_processed",
                "pm_pending", "webhook_deliveries", "auth_secrets", "idempotency_keys",
                "apranova_projection_stalls", "auth_signin_flows",
                "auth_signin_tickets", "auth_mfa", "auth_mfa_recovery",
                "privacy_keys"} <= _tables(url)
