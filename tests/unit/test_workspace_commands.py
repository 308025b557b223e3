"""Workspaces on the in-memory log with a fake engine: given events, when a command, a
process manager's step or a scheduled sweep, then the events recorded, the error raised
and what the engine was asked to do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from application.authorization import Actor, PaidAccess
from application.eventstore import EventStore
from application.ports import EngineUnavailable, RunningContainer, WorkspaceSpec
from application.workspaces import TrackImage, WorkspaceCommands, WorkspacePolicy
from domain.errors import Forbidden, NotFound, PaymentRequired
from domain.roles import Role
from domain.students import Student
from domain.workspaces import Workspace
from tests.unit.fakes import Clock, event_names, in_memory_store
from tests.unit.test_payment_and_workspace_commands import Passwords

STUDENT = Actor(uuid4(), Role.STUDENT)
FULL_STACK = Actor(uuid4(), Role.STUDENT)
ADMIN = Actor(uuid4(), Role.ADMIN)
WORKSPACE = Workspace.id_for(STUDENT.id)
NAME = f"apranova-ws-{STUDENT.id}"
POLICY = WorkspacePolicy(images={"DP": TrackImage("superset", 8088),
                                 "FSD": TrackImage("code-server", 8080)},
                         start_timeout=5, idle_timeout=timedelta(hours=1),
                         max_age=timedelta(hours=8))


class Engine:
    """Containers by name and state; every request kept. `broken` names the methods that
    raise, and what."""

    def __init__(self) -> None:
        self.containers: dict[str, str] = {}
        self.specs: list[WorkspaceSpec] = []
        self.waits: list[tuple[int, float]] = []
        self.stopped: list[str] = []
        self.removed: list[tuple[str, str]] = []
        self.ready = True
        self.broken: dict[str, Exception] = {}

    def _maybe_fail(self, method: str) -> None:
        if method in self.broken:
            raise self.broken[method]

    def ensure_running(self, spec: WorkspaceSpec) -> RunningContainer:
        self.specs.append(spec)
        self._maybe_fail("ensure_running")
        self.containers[spec.name] = "running"
        return RunningContainer(f"cid-{len(self.specs)}", 40000 + len(self.specs))

    def wait_ready(self, host_port: int, timeout: float) -> bool:
        self.waits.append((host_port, timeout))
        self._maybe_fail("wait_ready")
        return self.ready

    def stop(self, name: str) -> None:
        self.stopped.append(name)
        self._maybe_fail("stop")
        if name in self.containers:
            self.containers[name] = "exited"

    def remove(self, name: str, volume: str) -> None:
        self._maybe_fail("remove")
        self.removed.append((name, volume))
        self.containers.pop(name, None)

    def state(self, name: str) -> str | None:
        return self.containers.get(name)

    def managed(self) -> dict[str, str]:
        self._maybe_fail("managed")
        return dict(self.containers)


@dataclass
class World:
    store: EventStore
    engine: Engine
    clock: Clock
    workspaces: WorkspaceCommands

    def events(self, aggregate_id: UUID = WORKSPACE) -> list[Any]:
        return list(self.store.events.get(aggregate_id))

    def names(self, aggregate_id: UUID = WORKSPACE) -> list[str]:
        return event_names(self.store, aggregate_id)

    def state(self) -> str:
        return self.store.load(Workspace, WORKSPACE).state

    def later(self, **delta: float) -> datetime:
        return self.clock.now() + timedelta(**delta)


def _world(store: EventStore, paid_access_required: bool = False) -> World:
    engine, clock = Engine(), Clock()
    return World(store, engine, clock, WorkspaceCommands(
        store, engine, Passwords(), clock, POLICY, PaidAccess(store, paid_access_required)))


@pytest.fixture
def store() -> Iterator[EventStore]:
    with in_memory_store() as store:
        store.commit(Student(account_id=STUDENT.id, track="DP", actor_id=STUDENT.id))
        store.commit(Student(account_id=FULL_STACK.id, track="FSD", actor_id=FULL_STACK.id))
        yield store


@pytest.fixture
def world(store: EventStore) -> World:
    return _world(store)


def given_provisioning(world: World) -> None:
    world.workspaces.launch(STUDENT)
    workspace = world.store.load(Workspace, WORKSPACE)
    workspace.begin_provisioning()
    world.store.commit(workspace)


def given_running(world: World) -> None:
    world.workspaces.launch(STUDENT)
    world.workspaces.provision(WORKSPACE)
    world.engine.specs.clear()
    world.engine.waits.clear()


def given_stopped(world: World) -> None:
    given_running(world)
    world.workspaces.stop(STUDENT, STUDENT.id, "user")
    world.workspaces.halt(WORKSPACE)
    world.engine.stopped.clear()


# -- launching and stopping ------------------------------------------------------------------

@pytest.mark.parametrize(("actor", "image"), [(STUDENT, "superset"),
                                              (FULL_STACK, "code-server")])
def test_a_student_asks_for_a_workspace_of_their_tracks_image(
        world: World, actor: Actor, image: str) -> None:
    position, requested = world.workspaces.launch(actor)
    assert (position > 0, requested) == (True, True)
    opened, asked = world.events(Workspace.id_for(actor.id))
    assert isinstance(opened, Workspace.Opened)
    assert (opened.student_id, opened.container_name, opened.volume) == (
        actor.id, f"apranova-ws-{actor.id}", f"apranova-ws-{actor.id}-data")
    assert isinstance(asked, Workspace.LaunchRequested)
    assert (asked.image, asked.actor_id) == (image, actor.id)
    assert world.engine.specs == []  # the provisioner starts it, not the request


@pytest.mark.parametrize("given", [lambda w: w.workspaces.launch(STUDENT),
                                   given_provisioning, given_running],
                         ids=["requested", "provisioning", "running"])
def test_an_active_workspace_is_never_asked_for_twice(world: World, given: Any) -> None:
    given(world)
    before = world.names()
    _, requested = world.workspaces.launch(STUDENT)
    assert requested is False
    assert world.names() == before


def test_a_stopped_workspace_is_launched_again_on_the_same_container_and_volume(
        world: World) -> None:
    given_stopped(world)
    assert world.workspaces.launch(STUDENT)[1] is True
    assert world.names().count("LaunchRequested") == 2
    assert world.names().count("Opened") == 1
    assert world.store.load(Workspace, WORKSPACE).launches == 2


@pytest.mark.parametrize(("actor", "required", "error"), [
    (Actor(uuid4(), Role.STUDENT), False, Forbidden),  # no Student record
    (Actor(STUDENT.id, Role.TRAINER), False, Forbidden),
    (STUDENT, True, PaymentRequired),  # the track is not paid for
])
def test_nobody_without_access_to_a_track_gets_a_workspace(
        store: EventStore, actor: Actor, required: bool, error: type[Exception]) -> None:
    world = _world(store, paid_access_required=required)
    with pytest.raises(error):
        world.workspaces.launch(actor)
    assert world.store.find(Workspace, Workspace.id_for(actor.id)) is None


@pytest.mark.parametrize(("actor", "reason"), [(STUDENT, "user"), (ADMIN, "admin")])
def test_the_student_or_an_administrator_asks_a_running_workspace_to_stop(
        world: World, actor: Actor, reason: str) -> None:
    given_running(world)
    assert world.workspaces.stop(actor, STUDENT.id, reason) > 0
    stop = world.events()[-1]
    assert isinstance(stop, Workspace.StopRequested)
    assert (stop.actor_id, stop.reason) == (actor.id, reason)
    assert world.state() == "stopping"
    assert world.engine.stopped == []  # the stopping process manager does it


@pytest.mark.parametrize("actor", [FULL_STACK, Actor(uuid4(), Role.TRAINER),
                                   Actor(uuid4(), Role.AUDITOR)])
def test_nobody_else_stops_a_students_workspace(world: World, actor: Actor) -> None:
    given_running(world)
    with pytest.raises(Forbidden):
        world.workspaces.stop(actor, STUDENT.id, "user")
    assert world.state() == "running"


def test_stopping_a_stopped_workspace_records_nothing(world: World) -> None:
    given_stopped(world)
    before = world.names()
    assert world.workspaces.stop(STUDENT, STUDENT.id, "user") == 0
    assert world.names() == before


def test_stopping_a_workspace_never_launched_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.workspaces.stop(ADMIN, STUDENT.id, "admin")


def test_activity_without_a_workspace_creates_none(world: World) -> None:
    world.workspaces.seen(STUDENT.id)
    assert world.store.find(Workspace, WORKSPACE) is None


# -- the provisioning and stopping process managers ---------------------------------------------

def test_provisioning_starts_the_container_and_records_where_it_answers(
        world: World) -> None:
    world.workspaces.launch(STUDENT)
    assert world.workspaces.provision(WORKSPACE) > 0
    assert world.engine.specs == [WorkspaceSpec(
        name=NAME, image="superset", volume=f"{NAME}-data", password="pw",
        labels={"apranova.workspace": str(WORKSPACE), "apranova.student": str(STUDENT.id)},
        container_port=8088)]
    assert world.engine.waits == [(40001, 5)]
    assert world.names()[-2:] == ["ProvisioningStarted", "Started"]
    started = world.events()[-1]
    assert (started.launch, started.container_id, started.host_port) == (1, "cid-1", 40001)


def test_a_redelivered_launch_of_a_running_workspace_touches_nothing(world: World) -> None:
    given_running(world)
    before = world.names()
    assert world.workspaces.provision(WORKSPACE) == 0
    assert world.engine.specs == []
    assert world.names() == before


def test_a_provisioner_taking_over_half_way_finishes_the_same_launch(world: World) -> None:
    given_provisioning(world)
    world.workspaces.provision(WORKSPACE)
    assert world.names() == ["Opened", "LaunchRequested", "ProvisioningStarted", "Started"]
    assert [s.name for s in world.engine.specs] == [NAME]


@pytest.mark.parametrize("method", ["ensure_running", "wait_ready"])
def test_an_unreachable_engine_fails_the_launch_with_a_reason_to_retry_later(
        world: World, method: str) -> None:
    world.workspaces.launch(STUDENT)
    world.engine.broken[method] = EngineUnavailable("no socket")
    world.workspaces.provision(WORKSPACE)
    failed = world.events()[-1]
    assert isinstance(failed, Workspace.Failed)
    assert (failed.launch, failed.reason) == (1, "engine_unavailable")
    assert "try again later" in failed.detail
    assert world.state() == "failed"


@pytest.mark.parametrize(("error", "detail"), [
    (RuntimeError("image not found"),
     "The workspace could not start: RuntimeError: image not found"),
    (ValueError("x" * 2000), "The workspace could not start: ValueError: " + "x" * 457),
    # An engine's message is outside text: what the log cannot hold is replaced, so the
    # failure is still recorded instead of leaving the launch provisioning.
    (RuntimeError("bad\x00name \ud800"),
     "The workspace could not start: RuntimeError: bad\ufffdname \ufffd"),
])
def test_an_engine_error_is_the_launchs_outcome_and_its_detail_is_bounded(
        world: World, error: Exception, detail: str) -> None:
    world.workspaces.launch(STUDENT)
    world.engine.broken["ensure_running"] = error
    world.workspaces.provision(WORKSPACE)
    failed = world.events()[-1]
    assert (type(failed).__name__, failed.reason, failed.detail) == (
        "Failed", "engine_error", detail)
    assert len(failed.detail) <= 500


def test_a_container_that_never_answers_is_stopped_and_the_launch_failed(
        world: World) -> None:
    world.workspaces.launch(STUDENT)
    world.engine.ready = False
    world.workspaces.provision(WORKSPACE)
    assert world.engine.stopped == [NAME]
    failed = world.events()[-1]
    assert (type(failed).__name__, failed.reason, failed.detail) == (
        "Failed", "start_timeout", "not answering after 5s")


def test_a_stop_request_stops_the_container_and_records_its_reason(world: World) -> None:
    given_running(world)
    world.workspaces.stop(ADMIN, STUDENT.id, "admin")
    assert world.workspaces.halt(WORKSPACE) > 0
    assert world.engine.stopped == [NAME]
    stopped = world.events()[-1]
    assert (type(stopped).__name__, stopped.reason) == ("Stopped", "admin")
    assert world.state() == "stopped"


@pytest.mark.parametrize("given", [given_running, given_stopped],
                         ids=["running", "stopped"])
def test_halting_a_workspace_not_stopping_does_nothing(world: World, given: Any) -> None:
    given(world)
    before = world.names()
    assert world.workspaces.halt(WORKSPACE) == 0
    assert world.engine.stopped == []
    assert world.names() == before


def test_an_unreachable_engine_leaves_the_stop_to_be_retried(world: World) -> None:
    given_running(world)
    world.workspaces.stop(STUDENT, STUDENT.id, "user")
    world.engine.broken["stop"] = EngineUnavailable("no socket")
    with pytest.raises(EngineUnavailable):
        world.workspaces.halt(WORKSPACE)
    assert world.state() == "stopping"
    del world.engine.broken["stop"]
    world.workspaces.halt(WORKSPACE)
    assert world.state() == "stopped"


# -- culling ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("hours", "reason"), [(2, "idle_timeout"), (9, "max_age")])
def test_a_running_workspace_idle_or_too_old_is_asked_to_stop(
        world: World, hours: float, reason: str) -> None:
    given_running(world)
    assert world.workspaces.cull([WORKSPACE], now=world.later(hours=hours)) == [WORKSPACE]
    stop = world.events()[-1]
    assert (type(stop).__name__, stop.actor_id, stop.reason) == (
        "StopRequested", None, reason)


def test_recent_activity_does_not_save_a_workspace_past_its_maximum_age(
        world: World) -> None:
    given_running(world)
    world.clock.at += timedelta(hours=8, minutes=30)
    world.workspaces.seen(STUDENT.id)
    assert world.names()[-1] == "ActivitySeen"
    assert world.workspaces.cull([WORKSPACE]) == [WORKSPACE]  # by the clock: now
    assert world.events()[-1].reason == "max_age"


def test_a_recently_used_workspace_is_left_running(world: World) -> None:
    given_running(world)
    world.clock.at += timedelta(hours=3)
    world.workspaces.seen(STUDENT.id)
    assert world.workspaces.cull([WORKSPACE], now=world.later(minutes=30)) == []
    assert world.state() == "running"


def test_culling_skips_workspaces_unknown_or_not_running(world: World) -> None:
    given_provisioning(world)
    assert world.workspaces.cull([WORKSPACE, uuid4()], now=world.later(hours=9)) == []
    assert world.state() == "provisioning"


# -- reconciling the log with the engine -------------------------------------------------------

@pytest.mark.parametrize(("engine_state", "event", "reason"), [
    (None, "Failed", "vanished"), ("dead", "Failed", "vanished"),
    ("removing", "Failed", "vanished"), ("exited", "Stopped", "engine_exited"),
    ("paused", "Stopped", "engine_exited")])
def test_a_running_workspace_whose_container_is_not_running_is_recorded_so(
        world: World, engine_state: str | None, event: str, reason: str) -> None:
    given_running(world)
    if engine_state is None:
        world.engine.containers.clear()
    else:
        world.engine.containers[NAME] = engine_state
    assert world.workspaces.reconcile([WORKSPACE]) == 1
    last = world.events()[-1]
    assert (type(last).__name__, last.reason) == (event, reason)
    assert world.engine.stopped == []


def test_a_running_workspace_with_its_container_running_is_left_alone(world: World) -> None:
    given_running(world)
    before = world.names()
    assert world.workspaces.reconcile([WORKSPACE, uuid4()]) == 0
    assert world.names() == before
    assert (world.engine.specs, world.engine.stopped) == ([], [])


@pytest.mark.parametrize("given", [lambda w: w.workspaces.launch(STUDENT),
                                   given_provisioning], ids=["requested", "provisioning"])
def test_a_launch_left_half_way_adopts_the_container_it_started(
        world: World, given: Any) -> None:
    given(world)
    world.engine.containers[NAME] = "running"
    assert world.workspaces.reconcile([WORKSPACE], now=world.later(seconds=10)) == 1
    assert [s.name for s in world.engine.specs] == [NAME]
    started = world.events()[-1]
    assert (type(started).__name__, started.container_id, started.host_port) == (
        "Started", "cid-1", 40001)


@pytest.mark.parametrize("engine_state", [None, "exited", "dead"])
def test_a_launch_left_half_way_without_a_running_container_fails(
        world: World, engine_state: str | None) -> None:
    given_provisioning(world)
    if engine_state:
        world.engine.containers[NAME] = engine_state
    assert world.workspaces.reconcile([WORKSPACE], now=world.later(seconds=10)) == 1
    failed = world.events()[-1]
    assert (type(failed).__name__, failed.reason, failed.detail) == (
        "Failed", "start_timeout", "provisioning did not finish")
    assert world.engine.specs == []


def test_a_launch_still_within_its_start_timeout_is_left_to_its_provisioner(
        world: World) -> None:
    given_provisioning(world)
    assert world.workspaces.reconcile([WORKSPACE], now=world.later(seconds=1)) == 0
    assert world.state() == "provisioning"


def test_a_container_running_for_a_stopped_workspace_is_stopped(world: World) -> None:
    given_stopped(world)
    world.engine.containers[NAME] = "running"
    before = world.names()
    assert world.workspaces.reconcile([WORKSPACE]) == 1
    assert world.engine.stopped == [NAME]
    assert world.names() == before  # the log already says stopped


def test_reconciling_without_an_engine_changes_nothing(world: World) -> None:
    given_running(world)
    world.engine.broken["managed"] = EngineUnavailable("no socket")
    with pytest.raises(EngineUnavailable):
        world.workspaces.reconcile([WORKSPACE])
    assert world.state() == "running"


# -- erasure ---------------------------------------------------------------------------------

@pytest.mark.parametrize("given", [given_running, given_stopped], ids=["running", "stopped"])
def test_an_erased_students_workspace_is_stopped_and_its_volume_removed(
        world: World, given: Any) -> None:
    given(world)
    assert world.workspaces.discard(STUDENT.id) >= 0
    assert world.engine.removed == [(NAME, f"{NAME}-data")]
    assert world.state() == "stopped"
    assert world.workspaces.halt(WORKSPACE) == 0  # the stop policy finds nothing left to do


def test_a_student_without_a_workspace_has_nothing_to_discard(world: World) -> None:
    assert world.workspaces.discard(STUDENT.id) == 0
    assert world.engine.removed == []
