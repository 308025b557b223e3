"""What runs beside the API, apart from the wiring: the log's followers (projector,
relay, redelivery), dramatiq workers, the workspace supervisor and the listeners of an
API process, each supervised in its own thread and restarted after an error."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any
from uuid import UUID

import dramatiq
import psycopg
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.projection import ProjectionRunner

from application.ports import EngineUnavailable
from infrastructure import messaging
from projections.base import POSITIONS_CHANNEL
from projections.models import PROJECTIONS
from projections.runner import ProjectionsRunner

if TYPE_CHECKING:
    from infrastructure.bootstrap import Container

log = logging.getLogger("apranova")


class Supervised:
    """Runs a component in a thread and restarts it (with a growing pause) after an error."""

    def __init__(self, name: str, run: Callable[[threading.Event], None]) -> None:
        self.name = name
        self._run = run
        self._stop = threading.Event()
        self._healthy = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Supervised:
        self._thread.start()
        return self

    @property
    def healthy(self) -> bool:
        return self._thread.is_alive() and self._healthy

    def _loop(self) -> None:
        pause = 0.5
        while not self._stop.is_set():
            self._healthy = True
            try:
                self._run(self._stop)
                pause = 0.5
            except Exception:
                self._healthy = False
                log.exception("%s stopped with an error; restarting", self.name)
                self._stop.wait(pause)
                pause = min(pause * 2, 10)

    def signal(self) -> None:
        """Ask it to stop; it does at its next wake-up (half a second at most)."""
        self._stop.set()

    def stop(self) -> None:
        self.signal()
        self._thread.join(timeout=10)


def _run_projection_runner(make: Callable[[], ProjectionRunner[Any, Any]]
                           ) -> Callable[[threading.Event], None]:
    """Adapt a library ProjectionRunner to Supervised: run until stopped, raise its errors."""
    def run(stop: threading.Event) -> None:
        with make() as runner:
            while not stop.is_set():
                runner.run_forever(timeout=0.5)
                if runner.is_interrupted.is_set() and not stop.is_set():
                    raise RuntimeError("the runner stopped")

    return run


def revocations_channel(redis_namespace: str) -> str:
    """The Redis channel on which API processes tell each other of revoked sessions."""
    return f"{redis_namespace}:sessions-revoked"


class Background:
    """The components one process runs on a container; `stop` ends them all."""

    def __init__(self, container: Container) -> None:
        self.c = container
        self.components: list[Supervised | dramatiq.Worker] = []

    @property
    def _runner_env(self) -> dict[str, str]:
        # Tables exist already (build() made them under a lock); runners only read and apply.
        # No standing connections: a runner holds what it uses, and idle ones are closed.
        return {**self.c.env, "POSTGRES_POOL_SIZE": "0", "POSTGRES_MAX_OVERFLOW": "3",
                "CREATE_TABLE": "n"}

    def _supervise(self, name: str, run: Callable[[threading.Event], None]) -> Supervised:
        component = Supervised(name, run).start()
        self.components.append(component)
        return component

    def start_projections(self) -> None:
        self.start_erasure_listener()
        views = self.c.views
        runner = ProjectionsRunner(self.c.store, [p(view=views[p]) for p in PROJECTIONS])
        self._supervise("projections", runner.run)

    def start_relay(self) -> None:
        relay = messaging.relay_class(self.c.policies, self.c.dispatcher, self.c.pending)
        runner_env = self._runner_env
        self._supervise("relay", _run_projection_runner(
            lambda: ProjectionRunner(application_class=messaging.RelayStore,
                                     projection_class=relay,
                                     view_class=PostgresTrackingRecorder, env=runner_env)))
        every = min(10.0, self.c.settings.redeliver_after_seconds / 4)

        def redeliver(stop: threading.Event) -> None:
            while not stop.wait(every):
                messaging.redeliver(self.c.pending, self.c.dispatcher)

        self._supervise("redelivery", redeliver)

    def start_worker(self) -> None:
        self.start_erasure_listener()
        settings = self.c.settings
        self.components.append(messaging.start_worker(
            self.c.broker, settings.worker_threads, settings.worker_prefetch))
        self.start_workspace_supervisor()

    def start_workspace_supervisor(self) -> None:
        """Every few seconds: stop idle or too-old workspaces, and reconcile with the engine."""
        every = self.c.settings.workspace_supervise_every_seconds
        views, workspaces = self.c.workspace_views, self.c.workspaces

        def supervise(stop: threading.Event) -> None:
            pause = every
            while not stop.wait(pause):
                ids = views.ids()
                if not ids:
                    continue
                workspaces.cull(ids)
                try:
                    workspaces.reconcile(ids)
                except EngineUnavailable as error:
                    # Said once, not as a traceback every round; asked again less often.
                    if pause == every:
                        log.warning("workspace engine unavailable (%s); checking again "
                                    "with growing pauses", error)
                    pause = min(pause * 2, 600.0)
                    continue
                if pause != every:
                    log.info("workspace engine available again")
                pause = every

        self._supervise("workspace-supervisor", supervise)

    def start_all(self) -> None:
        self.start_projections()
        self.start_relay()
        self.start_worker()

    def _forget_revoked(self, message: str) -> str:
        """An account's revocation (an erasure revokes) drops what this process holds of
        the account decrypted: its personal-data key and the cached aggregates, so its
        readers and policies see an erasure at once, not after the key cache's minute."""
        kind, _, raw = message.partition(":")
        if kind == "account":
            with contextlib.suppress(ValueError):
                self.c.cipher.forget(UUID(raw))
                self.c.store.forget_cached()
        return message

    def _revocations(self, stop: threading.Event, subscribed: Callable[[], None]
                     ) -> Callable[[], Iterator[str]]:
        channel = revocations_channel(self.c.settings.redis_namespace)
        pubsub = self.c.redis.pubsub(ignore_subscribe_messages=True)

        def subscribe() -> Iterator[str]:
            pubsub.subscribe(channel)  # now, before the listener forgets what it knew
            subscribed()

            def messages() -> Iterator[str]:
                try:
                    while not stop.is_set():
                        message = pubsub.get_message(timeout=0.5)
                        if message is not None:
                            yield self._forget_revoked(bytes(message["data"]).decode())
                finally:
                    pubsub.close()

            return messages()

        return subscribe

    def start_session_listener(self) -> Supervised:
        """Hear revocations announced by other API processes (see RememberedSessions),
        and erasures (see _forget_revoked)."""
        def run(stop: threading.Event) -> None:
            self.c.sessions.listen(self._revocations(stop, lambda: None))

        return self._supervise("session-revocations", run)

    def start_erasure_listener(self) -> Supervised:
        """For processes that serve no sessions (projections, workers): hear erasures.
        One per process, however many components need it."""
        running = next((c for c in self.components
                        if isinstance(c, Supervised) and c.name == "erasures"), None)
        if running is not None:
            return running

        def run(stop: threading.Event) -> None:
            # Whatever was announced before (re)subscribing is unknown: forget it all.
            for _ in self._revocations(stop, lambda: self.c.cipher.forget())():
                pass

        return self._supervise("erasures", run)

    def start_position_listener(self) -> Supervised:
        """Hear the read models' positions as the projector commits them, so that
        read-your-writes waits in this process need not poll (see PositionBoard)."""
        board = next(iter(self.c.views.values())).board
        database_url = str(self.c.settings.database_url)
        log_channel = self.c.store.recorder.channel_name  # type: ignore[attr-defined]

        def run(stop: threading.Event) -> None:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f"LISTEN {POSITIONS_CHANNEL}")
                conn.execute(f'LISTEN "{log_channel}"')  # each append; wakes live tails
                board.listening = True
                try:
                    while not stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if note.channel == log_channel:
                                board.log_grew()
                            else:
                                board.announce_payload(note.payload)
                finally:
                    board.listening = False

        return self._supervise("read-model-positions", run)

    def healthy(self) -> bool:
        """Whether every component started here is running."""
        for component in self.components:
            if isinstance(component, Supervised) and not component.healthy:
                return False
            if isinstance(component, dramatiq.Worker) and not any(
                    c.is_alive() for c in component.consumers.values()):
                return False
        return True

    def signal(self) -> None:
        """Ask every supervised component to stop, without waiting for any."""
        for component in self.components:
            if isinstance(component, Supervised):
                component.signal()

    def stop(self) -> None:
        # Every component is asked first and then waited for, so a process stops in one
        # wake-up interval, not in the sum of them.
        self.signal()
        for component in reversed(self.components):
            component.stop()
        self.components.clear()
