"""Versioned migrations (Alembic, plain SQL) of the tables no replay can rebuild:
credentials and sessions, process-manager records, webhook deliveries, stored secrets,
idempotency keys. Read models are not here: a new layout is a rebuild from the log.

Every process brings the database up to date at start, one at a time under the schema
lock (infrastructure.bootstrap); `apranova migrate` does it as a deployment's first step.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
# Revisions are numbered by their file names (0001_..., 0002_...): the newest is the head
# (tests/integration/test_migrations.py holds this against Alembic's own reading).
HEAD = max(path.name.split("_", 1)[0] for path in (HERE / "versions").glob("[0-9]*_*.py"))


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def applied(database_url: str) -> str | None:
    """The revision the database is at, None before the first migration."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone() == (None,):
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return None if row is None else str(row[0])


def upgrade(database_url: str) -> str:
    """Apply every migration not yet applied; the revision the database is at."""
    if applied(database_url) == HEAD:
        # Every process checks at start; Alembic and SQLAlchemy (about 20 MB a process)
        # are loaded only when there is something to apply.
        return HEAD
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # The URL may be a libpq conninfo string, which SQLAlchemy cannot parse: psycopg opens.
    engine = create_engine("postgresql+psycopg://", poolclass=NullPool,
                           creator=lambda: psycopg.connect(database_url))
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            return str(MigrationContext.configure(connection).get_current_revision())
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision, as Alembic reads the scripts."""
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_config()).get_current_head())
