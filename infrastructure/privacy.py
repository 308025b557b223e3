"""Keys per person (AES-256-GCM), and what is kept about a person outside the log.

Each person's data key is itself encrypted (wrapped) under a key derived from the
credentials key and kept in `privacy_keys`, never in the log. Destroying it leaves a row
that says so: a sealed field whose key is gone, or was never kept, reads as erased.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import resolve_topic
from psycopg import sql
from psycopg_pool import ConnectionPool

from application.sealing import SEALED, plaintext_fields
from domain.privacy import ERASED, stream_class, subject_in
from domain.students import Student
from infrastructure.files import LocalFileStore

NONCE = 12
# How long a process trusts a key it read: another process's erasure reaches it at the
# latest after this long (at once where the account's revocation is heard, see forget).
KEY_TTL_SECONDS = 60.0
MAX_CACHED_KEYS = 50_000
VERSION = "p1"


class KeyTable(Protocol):
    def wrapped(self, subject: UUID) -> bytes | bool | None:
        """The wrapped key; None if there is none; False if it was destroyed."""
        ...

    def keep(self, subject: UUID, wrapped: bytes) -> bytes | bool:
        """Keep a new wrapped key unless one exists; return the one kept (or False)."""
        ...

    def destroy(self, subject: UUID) -> None: ...


class PostgresKeyTable:
    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def wrapped(self, subject: UUID) -> bytes | bool | None:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT wrapped FROM privacy_keys WHERE subject = %s",
                               (subject,)).fetchone()
        if row is None:
            return None
        return bytes(row[0]) if row[0] is not None else False

    def keep(self, subject: UUID, wrapped: bytes) -> bytes | bool:
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO privacy_keys (subject, wrapped) VALUES (%s, %s) "
                         "ON CONFLICT (subject) DO NOTHING", (subject, wrapped))
            row = conn.execute("SELECT wrapped FROM privacy_keys WHERE subject = %s",
                               (subject,)).fetchone()
        return bytes(row[0]) if row and row[0] is not None else False

    def destroy(self, subject: UUID) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO privacy_keys (subject, wrapped, destroyed_at) "
                "VALUES (%s, NULL, now()) ON CONFLICT (subject) DO UPDATE "
                "SET wrapped = NULL, destroyed_at = coalesce(privacy_keys.destroyed_at, now())",
                (subject,))
            # The row's old version, key and all, stays in the table until vacuumed.
            conn.execute("VACUUM privacy_keys")


class MemoryKeyTable:
    """For tests on the in-memory log."""

    def __init__(self) -> None:
        self.rows: dict[UUID, bytes | None] = {}

    def wrapped(self, subject: UUID) -> bytes | bool | None:
        if subject not in self.rows:
            return None
        value = self.rows[subject]
        return value if value is not None else False

    def keep(self, subject: UUID, wrapped: bytes) -> bytes | bool:
        value = self.rows.setdefault(subject, wrapped)
        return value if value is not None else False

    def destroy(self, subject: UUID) -> None:
        self.rows[subject] = None


def key_encryption_key(credentials_key: bytes) -> bytes:
    """A key of its own for wrapping, derived from the credentials key."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"apranova personal data keys").derive(credentials_key)


class SubjectKeys:
    """PersonalCipher: a sealed text is `p1.<subject>.<nonce and ciphertext>`, the
    subject authenticated with it, so one person's ciphertext cannot pass as another's."""

    def __init__(self, table: KeyTable, kek: bytes) -> None:
        self.table = table
        self.wrapper = AESGCM(kek)
        self._cache: dict[UUID, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()

    def seal(self, subject: UUID, plaintext: str) -> str:
        key = self._key(subject, create=True)
        if key is None:  # erased already: nothing of theirs is kept any more
            return f"{VERSION}.{subject}."
        nonce = os.urandom(NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), subject.bytes)
        return f"{VERSION}.{subject}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str) -> str | None:
        try:
            version, subject_text, body = sealed.split(".", 2)
            subject = UUID(subject_text)
            blob = base64.urlsafe_b64decode(body) if body else b""
        except (ValueError, binascii.Error):
            return None
        if version != VERSION or len(blob) <= NONCE:
            return None
        key = self._key(subject, create=False)
        if key is None:
            return None
        try:
            return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], subject.bytes).decode()
        except (InvalidTag, UnicodeDecodeError):
            return None

    def destroy(self, subject: UUID) -> None:
        self.table.destroy(subject)
        self.forget(subject)

    def forget(self, subject: UUID | None = None) -> None:
        """Drop a cached key (every key with None): the next use reads the table."""
        with self._lock:
            if subject is None:
                self._cache.clear()
            else:
                self._cache.pop(subject, None)

    def _key(self, subject: UUID, create: bool) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(subject)
        if cached is not None and now - cached[1] < KEY_TTL_SECONDS:
            return cached[0]
        wrapped = self.table.wrapped(subject)
        if wrapped is None and create:
            wrapped = self.table.keep(subject, self._wrap(subject, AESGCM.generate_key(256)))
        key = self._unwrap(subject, wrapped) if isinstance(wrapped, bytes) else None
        if wrapped is None:  # never kept: not cached, a later seal makes it
            return None
        with self._lock:
            if len(self._cache) >= MAX_CACHED_KEYS:
                self._cache.clear()
            self._cache[subject] = (key, now)
        return key

    def _wrap(self, subject: UUID, key: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self.wrapper.encrypt(nonce, key, subject.bytes)

    def _unwrap(self, subject: UUID, wrapped: bytes) -> bytes:
        return self.wrapper.decrypt(wrapped[:NONCE], wrapped[NONCE:], subject.bytes)


class PostgresPersonalStores:
    """PersonalStores on the service's own tables and file store."""

    def __init__(self, pool: ConnectionPool, files: LocalFileStore) -> None:
        self.pool = pool
        self.files = files

    def forget(self, account_id: UUID, email: str, mentions: Sequence[str],
               files: Sequence[str]) -> None:
        owners = [account_id, Student.id_for(account_id)]
        naming = [str(account_id).encode()] + ([email.encode()] if email != ERASED else [])
        quoted = [*naming, *(m.encode() for m in mentions)]
        with self.pool.connection() as conn, conn.transaction():
            for sql in (
                "DELETE FROM auth_credentials WHERE account_id = %(id)s",
                "DELETE FROM auth_sessions WHERE account_id = %(id)s",
                "DELETE FROM auth_one_time_tokens WHERE account_id = %(id)s",
                "DELETE FROM auth_secrets WHERE owner = ANY(%(owners)s)",
                "DELETE FROM auth_mfa WHERE account_id = %(id)s",
                "DELETE FROM auth_mfa_recovery WHERE account_id = %(id)s",
                "DELETE FROM auth_signin_tickets WHERE email = %(email)s "
                "OR subject = ANY(%(quoted_text)s)",
                # Responses kept for retries: the person's own, and others' that name them.
                "DELETE FROM idempotency_keys WHERE subject = %(text_id)s OR EXISTS ("
                "SELECT 1 FROM unnest(%(mentions)s::bytea[]) m WHERE position(m IN body) > 0)",
                # What failed while handling their events may quote them.
                "UPDATE pm_processed SET error = %(erased)s WHERE error LIKE ANY(%(like)s)",
                "UPDATE apranova_projection_stalls SET error = %(erased)s "
                "WHERE error LIKE ANY(%(like)s)",
            ):
                conn.execute(sql, {
                    "id": account_id, "owners": owners, "email": email,
                    "text_id": str(account_id), "mentions": naming, "erased": ERASED,
                    "quoted_text": list(mentions),
                    "like": ["%" + m.decode().replace("%", r"\%").replace("_", r"\_") + "%"
                             for m in quoted]})
        for sha256 in files:
            self.files.delete(sha256)


# Each read model table that holds rows about a person, by the column naming them.
ROWS_OF_A_PERSON = {
    "rm_users": "id", "rm_progress_owners": "account_id", "rm_progress": "account_id",
    "rm_submission_people": "account_id", "rm_submissions": "student_id",
    "rm_payments": "student_id", "rm_attempts": "student_id", "rm_quiz_takers": "student_id",
    "rm_workspaces": "student_id",
}


class PostgresPersonalRows:
    """PersonalRows from the read models' tables."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool

    def rows_of(self, account_id: UUID) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        with self.pool.connection() as conn:
            for table, column in ROWS_OF_A_PERSON.items():
                # Names are this module's constants, never input.
                rows = conn.execute(
                    f"SELECT to_jsonb(t) FROM {table} t WHERE {column} = %s",
                    (account_id,)).fetchall()
                found[table] = [row[0] for row in rows]
            found["rm_submission_history"] = [row[0] for row in conn.execute(
                "SELECT to_jsonb(h) FROM rm_submission_history h JOIN rm_submissions s "
                "ON s.id = h.submission_id WHERE s.student_id = %s "
                "ORDER BY h.submission_id, h.version", (account_id,)).fetchall()]
        return found


@dataclass(frozen=True)
class SealedLog:
    events: int
    fields_sealed: int


def seal_log(pool: ConnectionPool, table: str, transcoder: Transcoder,
             cipher: SubjectKeys, batch: int = 1000) -> SealedLog:
    """Copy the log into a new table with every personal field still in plaintext (a log
    written before fields were sealed) sealed under its person's key, check the copy, and
    put it in the old one's place, in one transaction; the plaintext table is dropped, so
    its files leave the disk (its earlier copies in WAL archives and backups do not).

    Positions, streams, versions and topics are kept; only personal values change. A
    stream's person comes from the event itself where it names one (a reclaimed email),
    else from the stream's first event."""
    copy, old = f"{table}_sealing", f"{table}_plaintext"
    subjects: dict[UUID, UUID | None] = {}
    events = sealed = 0
    with pool.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(sql.Identifier(table)))
        conn.execute(sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
            sql.Identifier(copy), sql.Identifier(table)))
        reader = conn.cursor(name="apranova_seal_log")
        reader.execute(sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {} ORDER BY notification_id").format(sql.Identifier(table)))
        insert = sql.SQL(
            "INSERT INTO {} (notification_id, originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s, %s)").format(sql.Identifier(copy))
        with conn.cursor() as writer:
            while rows := reader.fetchmany(batch):
                out = []
                for position, stream, version, topic, state in rows:
                    state, count = _sealed_state(bytes(state), topic, stream, version,
                                                 subjects, transcoder, cipher)
                    sealed += count
                    out.append((position, stream, version, topic, state))
                writer.executemany(insert, out)
                events += len(rows)
        reader.close()
        counted = conn.execute(sql.SQL(
            "SELECT (SELECT count(*) FROM {a}) = (SELECT count(*) FROM {b}) AND "
            "(SELECT max(notification_id) FROM {a}) IS NOT DISTINCT FROM "
            "(SELECT max(notification_id) FROM {b})").format(
            a=sql.Identifier(table), b=sql.Identifier(copy))).fetchone()
        if not counted or not counted[0]:
            raise RuntimeError("the sealed copy does not match the log; nothing changed")
        conn.execute(sql.SQL(
            "ALTER SEQUENCE {seq} OWNED BY {copy}.notification_id; "
            "ALTER TABLE {table} RENAME TO {old}; ALTER TABLE {copy} RENAME TO {table}; "
            "DROP TABLE {old}").format(
            seq=sql.Identifier(f"{table}_notification_id_seq"), copy=sql.Identifier(copy),
            table=sql.Identifier(table), old=sql.Identifier(old)))
        # The copy's indexes got generated names; give them the log's again.
        for index in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = %s", (table,)).fetchall():
            name = index[0]
            wanted = name.replace(f"{copy}_", f"{table}_", 1) if name.startswith(copy) else name
            if wanted.endswith("_topic_notification_id_idx"):
                wanted = f"{table}_topic_idx"
            elif wanted.endswith("_notification_id_idx"):
                wanted = f"{table}_notification_id_idx"
            if wanted != name:
                conn.execute(sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                    sql.Identifier(name), sql.Identifier(wanted)))
    return SealedLog(events, sealed)


def _sealed_state(state: bytes, topic: str, stream: UUID, version: int,
                  subjects: dict[UUID, UUID | None], transcoder: Transcoder,
                  cipher: SubjectKeys) -> tuple[bytes, int]:
    """The payload with its plaintext personal values sealed, and how many there were."""
    event_class = resolve_topic(topic)
    values: dict[str, Any] = transcoder.decode(state)
    own = subject_in({**values, "originator_id": stream}, stream_class(event_class))
    if version == 1:
        subjects[stream] = own
    fields = plaintext_fields(topic, values)
    if not fields:
        return state, 0
    subject = own or subjects.get(stream)
    if subject is None:
        raise RuntimeError(f"{topic} at version {version} of {stream} names no person")
    for name in fields:
        values[name] = {SEALED: cipher.seal(subject, values[name])}
    return transcoder.encode(values), len(fields)
