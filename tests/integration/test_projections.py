"""The users projection: exactly-once application and read-your-writes waits."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest
from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.utils import Environment

from application.eventstore import APPLICATION_NAME
from domain.students import Student
from infrastructure.settings import Settings
from projections.base import POSITIONS_CHANNEL, ProjectionLagging
from projections.users import UsersProjection, UsersView
from tests.conftest import (
    Mailbox,
    Server,
    User,
    make_settings,
    new_database,
    register_student,
    running_server,
)


def test_an_event_is_applied_once_even_if_delivered_twice(
    server: Server, client: httpx.Client, trainer: User, admin: User,
) -> None:
    s = register_student(client)
    r = client.post("/api/users/assign-trainer/", headers=admin.headers,
                    json={"student_id": s.id, "trainer_id": trainer.id})
    position = int(r.headers["X-Position"])
    view = server.container.users
    view.wait_for(position, 5)
    before = view.get(UUID(trainer.id))
    assert before is not None and before["student_count"] == 1
    # Re-deliver the already-applied event: tracking refuses it in the same transaction.
    store = server.container.store
    [(event, at)] = [
        (e, n.id) for n in store.recorder.select_notifications(start=position - 3, limit=4)
        if isinstance(e := store.mapper.to_domain_event(n), Student.TrainerAssigned)
    ]
    projection = UsersProjection(view=view)
    with pytest.raises(IntegrityError):
        projection.process_event(event, Tracking(APPLICATION_NAME, at))
    after = view.get(UUID(trainer.id))
    assert after is not None and after["student_count"] == 1


def test_waiting_for_a_position_the_model_does_not_follow_returns_at_once(
    server: Server, client: httpx.Client,
) -> None:
    register_student(client)
    view = server.container.users
    latest = server.container.store.recorder.max_notification_id() or 0
    view.wait_for(latest, 5)
    assert view.has_reached(latest)


def test_a_model_behind_a_followed_event_times_out(
    server: Server, client: httpx.Client, student: User,
) -> None:
    # A beyond-the-log position has no pending followed events, so it counts as reached.
    latest = server.container.store.recorder.max_notification_id() or 0
    server.container.users.wait_for(latest, 5)
    assert server.container.users.has_reached(latest + 10_000_000)
    # The same model under a fresh tracking table is behind every followed event.
    factory = InfrastructureFactory[UsersView].construct(
        env=Environment(f"users_behind_{uuid4().hex[:6]}", server.container.env))
    behind = factory.tracking_recorder(UsersView)
    try:
        assert not behind.has_reached(latest)
        with pytest.raises(ProjectionLagging):
            behind.wait_for(latest, timeout=0.3)
    finally:
        behind.datastore.close()


def test_reads_wait_for_positions_and_lagging_models_answer_503(
    smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    # A database of its own: no other server's projections may catch up for us.
    with new_database() as database_url:
        settings = make_settings(database_url, smtp[1], tmp_path, read_wait_seconds=0.3)
        _lagging_scenario(settings)


def _lagging_scenario(settings: Settings) -> None:
    with running_server(settings, background=False) as s, s.client() as c:
        s.background.start_projections()
        user = register_student(c)
        for component in s.background.components:
            component.stop()
        s.background.components.clear()
        # The command is stored, but its read model can't catch up: 202, not a false 200.
        r = c.put("/api/users/profile/", headers=user.headers, json={"name": "Later"})
        assert r.status_code == 202
        position = r.headers["X-Position"]
        assert r.json()["position"] == int(position)
        r = c.get("/api/users/profile/", headers={**user.headers, "X-Position": position})
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "PROJECTION_LAGGING"
        assert r.headers["Retry-After"] == "1"
        s.background.start_projections()
        s.container.users.wait_for(int(position), 10)
        r = c.get("/api/users/profile/", headers={**user.headers, "X-Position": position})
        assert r.status_code == 200 and r.json()["name"] == "Later"


def test_the_api_process_hears_each_position_its_read_models_commit(
    server: Server, client: httpx.Client,
) -> None:
    view = server.container.users
    deadline = time.monotonic() + 5
    while not view.board.listening:  # the listener starts with the app
        assert time.monotonic() < deadline
        time.sleep(0.05)
    user = register_student(client)
    r = client.put("/api/users/profile/", headers=user.headers, json={"name": "Heard"})
    position = int(r.headers["X-Position"])
    assert view.board.wait(view.position_key, position, 5)
    assert view.board.heard(view.position_key) >= position


def test_a_wait_whose_announcement_is_lost_asks_the_database(
    smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    with new_database() as database_url:
        settings = make_settings(database_url, smtp[1], tmp_path)
        with running_server(settings, background=False) as s, s.client() as c:
            live = s.container.users
            user = register_student(c)  # stored; no projector runs yet
            position = int(c.put("/api/users/profile/", headers=user.headers,
                                 json={"name": "Late"}).headers["X-Position"])
            # A board that believes it listens but will hear nothing.
            deaf = UsersView(datastore=live.datastore,
                             tracking_table_name=live.tracking_table_name)
            deaf.board.listening = True
            waited: list[float] = []

            def wait() -> None:
                started = time.monotonic()
                deaf.wait_for(position, 10)
                waited.append(time.monotonic() - started)

            waiter = threading.Thread(target=wait)
            waiter.start()
            time.sleep(0.5)
            assert not waited  # really waiting: the model is behind
            s.background.start_projections()
            waiter.join(15)
            assert waited and waited[0] < 5
            assert deaf.board.heard(deaf.position_key) == 0  # it was never told
            assert live.has_reached(position)


def test_a_backlog_is_applied_in_runs_one_transaction_per_model(
    smtp: tuple[Mailbox, int], tmp_path: Path,
) -> None:
    with new_database() as database_url:
        settings = make_settings(database_url, smtp[1], tmp_path, read_wait_seconds=0.01)
        with running_server(settings, background=False) as s, s.client() as c, \
                psycopg.connect(database_url, autocommit=True) as listener:
            users = [register_student(c) for _ in range(3)]  # stored; no projector runs yet
            position = 0
            for n in range(10):
                for i, user in enumerate(users):
                    r = c.put("/api/users/profile/", headers=user.headers,
                              json={"name": f"Student {i} edit {n}"})
                    assert r.status_code == 202  # the command is stored, the model behind
                    position = int(r.headers["X-Position"])
            live = s.container.users
            listener.execute(f"LISTEN {POSITIONS_CHANNEL}")
            s.background.start_projections()
            live.wait_for(position, 15)
            heard = [n.payload for n in listener.notifies(timeout=1)
                     if n.payload.startswith(f"{live.position_key}:")]
            # 33 events this model follows, applied in a handful of transactions.
            assert 1 <= len(heard) < 10
            assert heard[-1] == f"{live.position_key}:{live.position()}"
            for i, user in enumerate(users):
                row = live.get(UUID(user.id))
                assert row is not None and row["name"] == f"Student {i} edit 9"
