"""Pending process-manager work, so losing Redis loses nothing, and the outcomes of
commands sent with an Idempotency-Key.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS pm_pending (
        policy text NOT NULL,
        notification_id bigint NOT NULL,
        lease_until timestamptz NOT NULL DEFAULT now(),
        sends integer NOT NULL DEFAULT 1,
        PRIMARY KEY (policy, notification_id)
    );
    CREATE TABLE IF NOT EXISTS idempotency_keys (
        subject text NOT NULL,
        key text NOT NULL,
        fingerprint text NOT NULL,
        status integer,
        headers jsonb,
        body bytea,
        position bigint,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (subject, key)
    );
    CREATE INDEX IF NOT EXISTS idempotency_keys_created_idx ON idempotency_keys (created_at);
    """)
