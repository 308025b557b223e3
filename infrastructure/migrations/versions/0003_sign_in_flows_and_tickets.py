"""Sign-in with a provider: the flows begun in a browser and the tickets of sign-ins that
wait for one more step. Both are short-lived and single-use; secrets only as digests.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE IF NOT EXISTS auth_signin_flows (
        state_hash bytea PRIMARY KEY,
        browser_hash bytea NOT NULL,
        provider text NOT NULL,
        verifier text NOT NULL,
        nonce text,
        track text,
        next_url text,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX IF NOT EXISTS auth_signin_flows_expires_idx ON auth_signin_flows (expires_at);
    CREATE TABLE IF NOT EXISTS auth_signin_tickets (
        ticket_hash bytea PRIMARY KEY,
        kind text NOT NULL,
        provider text NOT NULL,
        issuer text NOT NULL,
        subject text NOT NULL,
        email text,
        name text NOT NULL,
        account_id uuid,
        track text,
        expires_at timestamptz NOT NULL
    );
    CREATE INDEX IF NOT EXISTS auth_signin_tickets_expires_idx
        ON auth_signin_tickets (expires_at);
    """)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS auth_signin_tickets; DROP TABLE IF EXISTS auth_signin_flows")
