"""Versioned migrations (Alembic, plain SQL) of the tables no replay can rebuild:
credentials and sessions, process-manager records, webhook deliveries, stored secrets,
idempotency keys. Read models are not here: a new layout is a rebuild from the log.

Every process brings the database up to date at start, one at a time under the schema
lock (infrastructure.bootstrap); `apranova migrate` does it as a deployment's first step.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

HERE = Path(__file__).parent


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    return config


def upgrade(database_url: str) -> str:
    """Apply every migration not yet applied; the revision the database is at."""
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
    return str(ScriptDirectory.from_config(_config()).get_current_head())
