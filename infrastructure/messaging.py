"""Process-manager plumbing: the relay follows the log into dramatiq, workers run the policies.

The event log is the outbox. The relay enqueues one message per (policy, event) and
then records its position, so delivery is at-least-once; the worker skips a
(policy, event) pair it has already completed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import CurrentMessage
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool
from redis import Redis

from application.eventstore import EventStore
from application.processes import Policy

log = logging.getLogger("apranova.processes")

QUEUE = "process-managers"
ACTOR_NAME = "run_policy"
MAX_RETRIES = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS pm_processed (
    policy text NOT NULL,
    notification_id bigint NOT NULL,
    status text NOT NULL,
    error text,
    processed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (policy, notification_id)
);
"""


def make_broker(redis: Redis, namespace: str) -> RedisBroker:
    broker = RedisBroker(client=redis, namespace=f"{namespace}-dramatiq")
    broker.add_middleware(CurrentMessage())
    return broker


class PolicyRunner:
    """Runs one policy for one logged event, once."""

    def __init__(self, store: EventStore, pool: ConnectionPool, policies: Sequence[Policy]) -> None:
        self.store = store
        self.pool = pool
        self.policies = {p.name: p for p in policies}

    def run(self, policy_name: str, notification_id: int, final_attempt: bool) -> None:
        policy = self.policies[policy_name]
        notifications = self.store.recorder.select_notifications(start=notification_id, limit=1)
        if not notifications or notifications[0].id != notification_id:
            raise LookupError(f"No event at position {notification_id}")
        if self._done(policy_name, notification_id):
            return
        event = self.store.mapper.to_domain_event(notifications[0])
        try:
            policy.handle(event)
        except Exception as error:
            if not final_attempt:
                raise
            # Out of retries: say so durably instead of failing silently.
            log.exception("policy %s failed for event %s", policy_name, notification_id)
            self._record(policy_name, notification_id, "failed", repr(error))
            return
        self._record(policy_name, notification_id, "done", None)

    def _done(self, policy: str, notification_id: int) -> bool:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM pm_processed WHERE policy = %s AND notification_id = %s",
                (policy, notification_id),
            ).fetchone()
        return row is not None

    def _record(self, policy: str, notification_id: int, status: str, error: str | None) -> None:
        with self.pool.connection() as conn:
            conn.execute(
                "INSERT INTO pm_processed (policy, notification_id, status, error) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (policy, notification_id) DO NOTHING",
                (policy, notification_id, status, error),
            )


def declare_actor(
    broker: RedisBroker, runner: Callable[[], PolicyRunner] | None
) -> dramatiq.Actor[..., None]:
    """The one actor all policies run through. `runner` is None where only sending happens."""

    def run_policy(policy_name: str, notification_id: int) -> None:
        if runner is None:
            raise RuntimeError("This process only enqueues policies")
        message = CurrentMessage.get_current_message()
        retries = message.options.get("retries", 0) if message else MAX_RETRIES
        runner().run(policy_name, notification_id, final_attempt=retries >= MAX_RETRIES)

    declare = dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE, broker=broker,
                             max_retries=MAX_RETRIES, min_backoff=200, max_backoff=30_000)
    return declare(run_policy)


class Relay(Projection[PostgresTrackingRecorder]):
    """Follows the log and enqueues a message per interested policy, then tracks the event."""

    name = "relay"
    routes: ClassVar[dict[type, tuple[str, ...]]] = {}
    send: ClassVar[Callable[[str, int], None]]

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        for policy_name in self.routes.get(type(domain_event), ()):
            type(self).send(policy_name, tracking.notification_id)
        self.view.insert_tracking(tracking)


def relay_class(policies: Sequence[Policy], actor: dramatiq.Actor[..., None]) -> type[Relay]:
    """A Relay bound to these policies (the runner builds projections from a class)."""
    routes: dict[type, tuple[str, ...]] = {}
    for policy in policies:
        for event_class in policy.events:
            routes[event_class] = (*routes.get(event_class, ()), policy.name)

    def send(policy_name: str, notification_id: int) -> None:
        actor.send(policy_name, notification_id)

    return type("Relay", (Relay,), {
        "name": "relay",
        "routes": routes,
        "send": staticmethod(send),
        "topics": tuple(get_topic(cls) for cls in routes),
    })


def start_worker(broker: RedisBroker, threads: int, prefetch: int) -> dramatiq.Worker:
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=200)
    worker.queue_prefetch = prefetch
    worker.start()
    return worker
