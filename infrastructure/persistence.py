"""Where the event store and read models live: one mapping from settings to the library's env."""

from __future__ import annotations

from typing import Any

from psycopg.conninfo import conninfo_to_dict

EVENTSOURCING_DEFAULTS = {
    "PERSISTENCE_MODULE": "eventsourcing.postgres",
    # Off, on purpose: the library's insert function skips the table lock that makes
    # notification ids commit in order, so concurrent writers can leave gaps that a
    # subscriber (projections, the relay) passes over and never fills (measured: 4-10 of
    # 4,800 events missed with 8 writers; none with the lock). Correct beats twice as fast.
    "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
    "POSTGRES_CONNECT_TIMEOUT": "5",
    # A finite lock timeout, so a stuck writer fails a request instead of hanging it.
    "POSTGRES_LOCK_TIMEOUT": "5",
    "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
    # No ping per checkout: it costs a round trip on every command; a connection broken
    # by a database restart fails one request with 503 and the pool replaces it.
    "POSTGRES_PRE_PING": "n",
    # Aggregates are cached and fast-forwarded with the events stored since (one indexed
    # query, usually empty), instead of replayed whole on every command: an attempt
    # gathers an event per saved answer, and every answer also reads its quiz.
    # Commands get a deep copy, so a rejected command leaves the cache untouched.
    "AGGREGATE_CACHE_MAXSIZE": "10000",
    "AGGREGATE_CACHE_FASTFORWARD": "y",
}


# Followers (the relay, the projections, analysts filtering by type) read the log as
# "notification_id > last AND topic = ANY(theirs) ORDER BY notification_id". A follower's
# position only moves on events it wants, so without this index every wake-up scanned all
# the events since its last one: the relay, which wants no answer or attempt events, spent
# a third of a core re-reading the quiz traffic under the 1,000-user load.
def topic_index(events_table: str) -> str:
    return (f"CREATE INDEX IF NOT EXISTS {events_table}_topic_idx "
            f"ON {events_table} (topic, notification_id)")


def eventsourcing_env(database_url: str, pool_size: int = 10) -> dict[str, str]:
    """Translate a PostgreSQL URL into the eventsourcing library's POSTGRES_* variables.

    The library opens POSTGRES_POOL_SIZE connections up front and grows by
    POSTGRES_MAX_OVERFLOW under load; several pools live in one process, so keep the
    standing part small and let load decide.
    """
    parts = conninfo_to_dict(database_url)
    env = dict(EVENTSOURCING_DEFAULTS)
    env.update({
        "POSTGRES_DBNAME": str(parts.get("dbname") or "postgres"),
        "POSTGRES_HOST": str(parts.get("host") or "127.0.0.1"),
        "POSTGRES_PORT": str(parts.get("port") or "5432"),
        "POSTGRES_USER": str(parts.get("user") or "postgres"),
        "POSTGRES_PASSWORD": str(parts.get("password") or ""),
        "POSTGRES_POOL_SIZE": "2",
        "POSTGRES_MAX_OVERFLOW": str(max(pool_size - 2, 0)),
    })
    return env


# Connections opened for a burst are closed after this much idleness, so a quiet
# process holds few connections (PostgreSQL's default limit is 100 for everyone).
MAX_IDLE_SECONDS = 30.0


def return_idle_connections(*pools: Any) -> None:
    """Shrink pools back soon after a burst (psycopg_pool keeps them 10 minutes by default).

    Must run before a pool is first opened: the shrink schedule is set at open.
    """
    for pool in pools:
        pool.max_idle = MAX_IDLE_SECONDS
