"""Two-factor sign-in: each account's last used time step (a code works once) and its
recovery codes as digests. The TOTP secret itself is in auth_secrets, encrypted.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS auth_mfa (
        account_id uuid PRIMARY KEY,
        active boolean NOT NULL DEFAULT false,
        last_step bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS auth_mfa_recovery (
        account_id uuid NOT NULL,
        code_hash bytea NOT NULL,
        used_at timestamptz,
        PRIMARY KEY (account_id, code_hash)
    );
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS auth_mfa_recovery; DROP TABLE IF EXISTS auth_mfa")
