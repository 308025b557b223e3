"""The tables of the first release, as it made them at every start (IF NOT EXISTS, so a
database that release created is taken over as it is).

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS auth_credentials (
        account_id uuid PRIMARY KEY,
        password_hash text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE IF NOT EXISTS auth_sessions (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL,
        refresh_jti text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz
    );
    CREATE INDEX IF NOT EXISTS auth_sessions_live_by_account
        ON auth_sessions (account_id) WHERE revoked_at IS NULL;
    CREATE TABLE IF NOT EXISTS auth_one_time_tokens (
        token_hash bytea PRIMARY KEY,
        account_id uuid NOT NULL,
        purpose text NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz
    );
    CREATE TABLE IF NOT EXISTS pm_processed (
        policy text NOT NULL,
        notification_id bigint NOT NULL,
        status text NOT NULL,
        error text,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (policy, notification_id)
    );
    CREATE TABLE IF NOT EXISTS webhook_deliveries (
        provider text NOT NULL,
        delivery_id text NOT NULL,
        kind text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, delivery_id)
    );
    CREATE TABLE IF NOT EXISTS auth_secrets (
        owner uuid NOT NULL,
        kind text NOT NULL,
        label text NOT NULL DEFAULT '',
        value bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (owner, kind)
    );
    CREATE TABLE IF NOT EXISTS apranova_projection_stalls (
        model text PRIMARY KEY,
        position bigint NOT NULL,
        topic text NOT NULL,
        error text NOT NULL,
        attempts integer NOT NULL,
        since timestamptz NOT NULL DEFAULT now(),
        last_attempt timestamptz NOT NULL DEFAULT now()
    );
    """)
