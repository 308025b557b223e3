"""Process-manager plumbing: the relay follows the log into dramatiq, workers run the policies.

The event log is the outbox. The relay records each (policy, event) pair as pending,
enqueues a message for it and then records its position, so delivery is at-least-once;
the worker skips a pair it has already completed. Whether the work was done is known
from our own records, never from Redis keeping what it was given: a pending pair nobody
has worked on for `redeliver_after` seconds is enqueued again (`Pending.due`), so a
Redis restart without persistence, a flush or a failover loses nothing.

A worker leases a pair before running it, and completes it (processed row in, pending
row out) in one transaction: two deliveries of one message at once run it once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from eventsourcing.persistence import Mapper, StoredEvent, Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool
from redis import Redis

from application.eventstore import APPLICATION_NAME, EventStore
from application.processes import Policy
from domain.errors import Forbidden, Gone, Invalid, NotFound
from domain.text import storable
from infrastructure.logs import REQUEST_ID
from infrastructure.persistence import EVENT_REQUESTS_TABLE

log = logging.getLogger("apranova.processes")

QUEUE = "process-managers"  # the one queue of an earlier release, still drained
QUEUE_PREFIX = "pm"
ACTOR_NAME = "run_policy"
EXHAUSTED_ACTOR = "policy_retries_exhausted"
EXHAUSTED_QUEUE = "pm.failures"
# Failures the same message would meet however often it is tried: a missing object, input
# a rule refuses, an event that cannot be read. Retrying them only delays the record.
DETERMINISTIC: tuple[type[Exception], ...] = (Invalid, NotFound, Forbidden, Gone, LookupError,
                                              ValueError)
MAX_RETRIES = 5
MAX_ERROR = 2000

class Pending:
    """The (policy, event) pairs enqueued and not yet completed."""

    def __init__(self, pool: ConnectionPool, redeliver_after: float) -> None:
        self.pool = pool
        self.redeliver_after = redeliver_after

    def expect(self, policies: Sequence[str], notification_id: int) -> str | None:
        """Note the pairs as pending; the id of the request that stored the event, if
        known (one round trip for both)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "WITH noted AS (INSERT INTO pm_pending (policy, notification_id) "
                "SELECT unnest(%s::text[]), %s ON CONFLICT (policy, notification_id) "
                f"DO NOTHING) SELECT request_id FROM {EVENT_REQUESTS_TABLE} "
                "WHERE position = %s", (list(policies), notification_id, notification_id)
            ).fetchone()
        return str(_values(row)[0]) if row else None

    def claim(self, policy: str, notification_id: int) -> bool:
        """Lease the pair for this delivery; False while another delivery holds it."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "INSERT INTO pm_pending (policy, notification_id, lease_until) "
                "VALUES (%s, %s, now() + make_interval(secs => %s)) "
                "ON CONFLICT (policy, notification_id) DO UPDATE "
                "SET lease_until = EXCLUDED.lease_until "
                "WHERE pm_pending.lease_until <= now() RETURNING 1",
                (policy, notification_id, self.redeliver_after)).fetchone()
        return row is not None

    def forget_requests(self) -> None:
        """Request ids of events stored more than a day ago are not needed any more."""
        with self.pool.connection() as conn:
            conn.execute(f"DELETE FROM {EVENT_REQUESTS_TABLE} "
                         "WHERE recorded_at < now() - interval '1 day'")

    def release(self, policy: str, notification_id: int) -> None:
        """Give the lease back for a retry."""
        with self.pool.connection() as conn:
            conn.execute("UPDATE pm_pending SET lease_until = now() "
                         "WHERE policy = %s AND notification_id = %s",
                         (policy, notification_id))

    def due(self, limit: int = 500) -> list[tuple[str, int]]:
        """Pairs nobody has worked on for a while, marked as sent again. The wait doubles
        with each send, so a long backlog in Redis is not multiplied by the resends."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE pm_pending SET lease_until = now(), sends = sends + 1 "
                "WHERE (policy, notification_id) IN ("
                " SELECT policy, notification_id FROM pm_pending WHERE lease_until < now() - "
                " make_interval(secs => %s * power(2, least(sends - 1, 6))) "
                " ORDER BY notification_id LIMIT %s FOR UPDATE SKIP LOCKED) "
                "RETURNING policy, notification_id",
                (self.redeliver_after, limit)).fetchall()
        return [_pair(r) for r in rows]


def _values(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)


def _pair(row: Any) -> tuple[str, int]:
    if isinstance(row, dict):
        return str(row["policy"]), int(row["notification_id"])
    return str(row[0]), int(row[1])


def redeliver(pending: Pending, dispatcher: Dispatcher) -> int:
    """Enqueue again what is due; the worker's dedupe makes a duplicate harmless."""
    due = pending.due()
    for policy, notification_id in due:
        dispatcher.send(policy, notification_id)
    pending.forget_requests()
    if due:
        log.warning("enqueued %d pending process-manager messages again", len(due))
    return len(due)


# A killed worker's prefetched messages go back to the queue once its heartbeat is this
# old (ms) and some consumer runs queue maintenance. dramatiq's defaults (60 s, and
# maintenance on 0.1% of fetches, about every 100 s for an idle worker) left them waiting
# up to 259 s after four kills; live workers beat with every fetch (at least every 200 ms
# here, see start_worker), so 15 s is far above a live one's gap.
HEARTBEAT_TIMEOUT_MS = 15_000
MAINTENANCE_PER_MILLION = 20_000  # 2% of fetches: every few seconds when idle


def make_broker(redis: Redis, namespace: str) -> RedisBroker:
    broker = RedisBroker(client=redis, namespace=f"{namespace}-dramatiq",
                         heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
                         maintenance_chance=MAINTENANCE_PER_MILLION)
    broker.add_middleware(CurrentMessage())
    return broker


class PolicyRunner:
    """Runs one policy for one logged event, once."""

    def __init__(self, store: EventStore, pending: Pending, policies: Sequence[Policy]) -> None:
        self.store = store
        self.pool = pending.pool
        self.pending = pending
        self.policies = {p.name: p for p in policies}

    def run(self, policy_name: str, notification_id: int) -> None:
        """Run the policy for the event, unless done or running elsewhere. A failure the
        same message would meet again (DETERMINISTIC) is recorded at once and re-raised
        (its actor `throws` it: not retried); any other is re-raised for a retry."""
        if self._done(policy_name, notification_id):
            return
        if not self.pending.claim(policy_name, notification_id):
            return  # another delivery of it is running; if that one dies, it is resent
        if self._done(policy_name, notification_id):  # completed between the two
            self._record(policy_name, notification_id, "done", None)
            return
        try:
            policy = self.policies[policy_name]
            notifications = self.store.recorder.select_notifications(
                start=notification_id, limit=1)
            if not notifications or notifications[0].id != notification_id:
                raise LookupError(f"No event at position {notification_id}")
            event = self.store.mapper.to_domain_event(notifications[0])
            policy.handle(event)
        except DETERMINISTIC as error:
            self.give_up(policy_name, notification_id, f"{type(error).__name__}: {error}")
            raise
        except Exception:
            self.pending.release(policy_name, notification_id)
            raise
        self._record(policy_name, notification_id, "done", None)

    def give_up(self, policy_name: str, notification_id: int, reason: str) -> None:
        """Say durably that this work failed for good, instead of failing silently; the
        messages behind it are not held up by it (`apranova failed-policies`)."""
        log.error("policy %s failed for event %s: %s", policy_name, notification_id, reason)
        self._record(policy_name, notification_id, "failed", storable(reason)[:MAX_ERROR])

    def _done(self, policy: str, notification_id: int) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM pm_processed WHERE policy = %s AND notification_id = %s",
                (policy, notification_id),
            ).fetchone()
        return row is not None

    def _record(self, policy: str, notification_id: int, status: str, error: str | None) -> None:
        with self.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO pm_processed (policy, notification_id, status, error) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (policy, notification_id) DO NOTHING",
                (policy, notification_id, status, error),
            )
            conn.execute("DELETE FROM pm_pending WHERE policy = %s AND notification_id = %s",
                         (policy, notification_id))


class Dispatcher:
    """One dramatiq actor per policy, on a queue of its own with its own time limit, so a
    slow policy (quiz generation) neither holds up mail nor is cut short by mail's limit.
    Deterministic failures are thrown (not retried); a pair still failing after its
    retries is recorded by the `on_retry_exhausted` actor. `runner` is None in processes
    that only send (the API, the relay)."""

    def __init__(self, broker: RedisBroker, policies: Sequence[Policy],
                 runner: Callable[[], PolicyRunner] | None) -> None:
        self.broker = broker
        self.runner = runner
        self.actors = {policy.name: self._declare(policy) for policy in policies}
        self._by_actor = {actor.actor_name: name for name, actor in self.actors.items()}
        self.exhausted = dramatiq.actor(actor_name=EXHAUSTED_ACTOR, queue_name=EXHAUSTED_QUEUE,
                                        broker=broker, max_retries=MAX_RETRIES)(self._exhausted)
        # Messages enqueued as (policy, position) for the one actor of an earlier release.
        self.legacy = dramatiq.actor(
            actor_name=ACTOR_NAME, queue_name=QUEUE, broker=broker, max_retries=MAX_RETRIES,
            min_backoff=200, max_backoff=30_000, throws=DETERMINISTIC,
            on_retry_exhausted=EXHAUSTED_ACTOR)(self._run)

    @property
    def queues(self) -> list[str]:
        return [QUEUE, *(actor.queue_name for actor in self.actors.values())]

    def send(self, policy_name: str, notification_id: int, request_id: str | None = None
             ) -> None:
        self.actors[policy_name].send_with_options(args=(notification_id,),
                                                   request_id=request_id)

    def _declare(self, policy: Policy) -> dramatiq.Actor[..., None]:
        def run(notification_id: int) -> None:
            self._run(policy.name, notification_id)

        return dramatiq.actor(
            actor_name=f"policy_{policy.name}", queue_name=f"{QUEUE_PREFIX}.{policy.name}",
            broker=self.broker, max_retries=MAX_RETRIES, min_backoff=200, max_backoff=30_000,
            time_limit=int(policy.time_limit_seconds * 1000), throws=DETERMINISTIC,
            on_retry_exhausted=EXHAUSTED_ACTOR)(run)

    def _run(self, policy_name: str, notification_id: int) -> None:
        if self.runner is None:
            raise RuntimeError("This process only enqueues policies")
        message = CurrentMessage.get_current_message()
        # The log lines of this work carry the id of the request that stored the event.
        token = REQUEST_ID.set(message.options.get("request_id") if message else None)
        try:
            self.runner().run(policy_name, notification_id)
        finally:
            REQUEST_ID.reset(token)

    def _exhausted(self, message: dict[str, Any], retries: dict[str, Any]) -> None:
        if self.runner is None:
            raise RuntimeError("This process only enqueues policies")
        args = message.get("args") or []
        if message.get("actor_name") == ACTOR_NAME:
            policy_name, notification_id = str(args[0]), int(args[1])
        else:
            policy_name, notification_id = self._by_actor[message["actor_name"]], int(args[0])
        trace = str((message.get("options") or {}).get("traceback") or "").strip()
        reason = trace.splitlines()[-1] if trace else "failed after its retries"
        self.runner().give_up(policy_name, notification_id, reason)


class Logged(str):
    """What the relay needs of a logged event: its topic, never its decoded body, so
    an event no policy could decode is still routed (and its failure recorded there)."""


class TopicMapper(Mapper[Any]):
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return Logged(stored_event.topic)


class RelayStore(EventStore):
    """The log as the relay reads it: topics only."""

    name = APPLICATION_NAME

    def construct_mapper(self) -> Mapper[Any]:
        return TopicMapper(transcoder=self.construct_transcoder())


class Relay(Projection[PostgresTrackingRecorder]):
    """Follows the log and enqueues a message per interested policy, then tracks the event."""

    name = "relay"
    routes: ClassVar[dict[str, tuple[str, ...]]] = {}
    send: ClassVar[Callable[[tuple[str, ...], int], None]]

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if policies := self.routes.get(str(domain_event), ()):
            type(self).send(policies, tracking.notification_id)
        self.view.insert_tracking(tracking)


def relay_class(policies: Sequence[Policy], dispatcher: Dispatcher,
                pending: Pending) -> type[Relay]:
    """A Relay bound to these policies (the runner builds projections from a class)."""
    routes: dict[str, tuple[str, ...]] = {}
    for policy in policies:
        for event_class in policy.events:
            topic = get_topic(event_class)
            routes[topic] = (*routes.get(topic, ()), policy.name)

    def send(policy_names: tuple[str, ...], notification_id: int) -> None:
        request_id = pending.expect(policy_names, notification_id)  # before Redis has it
        for policy_name in policy_names:
            dispatcher.send(policy_name, notification_id, request_id)

    return type("Relay", (Relay,), {
        "name": "relay",
        "routes": routes,
        "send": staticmethod(send),
        "topics": tuple(routes),
    })


def start_worker(broker: RedisBroker, threads: int, prefetch: int) -> dramatiq.Worker:
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.queue_prefetch = prefetch
    worker.start()
    return worker


def failures(pool: ConnectionPool, limit: int = 100) -> list[dict[str, Any]]:
    """The (policy, event) pairs given up on, newest first, with the reason."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT p.policy, p.notification_id AS position, e.topic, p.error, "
            "p.processed_at FROM pm_processed p LEFT JOIN apranova_events e "
            "ON e.notification_id = p.notification_id WHERE p.status = 'failed' "
            "ORDER BY p.processed_at DESC LIMIT %s", (limit,)).fetchall()
    return [dict(r) if isinstance(r, dict) else dict(zip(
        ("policy", "position", "topic", "error", "processed_at"), r, strict=True))
        for r in rows]


def failure_count(pool: ConnectionPool) -> int:
    return progress(pool).failed


@dataclass(frozen=True)
class Progress:
    relay_position: int
    pending: int
    failed: int


def progress(pool: ConnectionPool) -> Progress:
    """How far the relay has enqueued, and what the workers have left and gave up on."""
    with pool.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT COALESCE(max(notification_id), 0) FROM relay_tracking), "
            "(SELECT count(*) FROM pm_pending), "
            "(SELECT count(*) FROM pm_processed WHERE status = 'failed')").fetchone()
    values = _values(row) if row else (0, 0, 0)
    return Progress(*(int(v) for v in values))


def queue_depth(dispatcher: Dispatcher) -> int:
    """Messages waiting in Redis: every policy's queue and its delayed retries (".DQ")."""
    client, namespace = dispatcher.broker.client, dispatcher.broker.namespace
    return sum(int(client.llen(f"{namespace}:{queue}")) + int(client.llen(
        f"{namespace}:{queue}.DQ")) for queue in dispatcher.queues)
