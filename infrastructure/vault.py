"""Secrets kept outside the log, encrypted at rest with Fernet: third-party tokens,
workspace passwords."""

from __future__ import annotations

import secrets
from uuid import UUID

from cryptography.fernet import Fernet
from psycopg_pool import ConnectionPool

GITHUB = "github-token"
WORKSPACE = "workspace-password"


class EncryptedVault:
    def __init__(self, pool: ConnectionPool, key: bytes) -> None:
        self.pool = pool
        self.fernet = Fernet(key)

    def put(self, owner: UUID, kind: str, value: str, label: str = "") -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_secrets (owner, kind, label, value) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (owner, kind) DO UPDATE SET label = EXCLUDED.label, "
                "value = EXCLUDED.value, updated_at = now()",
                (owner, kind, label, self.fernet.encrypt(value.encode())))

    def get(self, owner: UUID, kind: str) -> str | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT value FROM auth_secrets WHERE owner = %s AND kind = %s",
                               (owner, kind)).fetchone()
        return self.fernet.decrypt(bytes(row[0])).decode() if row else None

    # TokenVault, for GitHub
    def store(self, account_id: UUID, login: str, token: str) -> None:
        self.put(account_id, GITHUB, token, label=login)

    def token(self, account_id: UUID) -> str | None:
        return self.get(account_id, GITHUB)

    # Workspace passwords: one per student, made on first use.
    def password_for(self, student_id: UUID) -> str:
        existing = self.get(student_id, WORKSPACE)
        if existing is not None:
            return existing
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO auth_secrets (owner, kind, value) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING",
                (student_id, WORKSPACE, self.fernet.encrypt(secrets.token_urlsafe(18).encode())))
        return str(self.get(student_id, WORKSPACE))
