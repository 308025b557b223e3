"""Personal data keys: one per person, wrapped under a key derived from the credentials
key. A destroyed key leaves its row with no key: that person's fields read as erased.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS privacy_keys (
        subject uuid PRIMARY KEY,
        wrapped bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        destroyed_at timestamptz
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS privacy_keys")
