"""GitHub on the in-memory log with fakes of the code host, the token vault and the
one-time keys: given events, when a command (link, repository, pull request), then the
events recorded, the error raised or the calls made on the host."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import pytest

from application.auth import Unauthenticated
from application.authorization import Actor
from application.eventstore import EventStore
from application.github import GITHUB_ACTOR, GitHubCommands, GitHubNotConfigured
from application.ports import HostedRepository
from domain.accounts import Account
from domain.curriculum import Content, Curriculum
from domain.progress import Progress
from domain.repositories import Repository
from domain.roles import Role
from domain.submissions import Submission
from tests.unit.fakes import OneTime, event_names, in_memory_store

STUDENT = Actor(uuid4(), Role.STUDENT)
SESSION = uuid4()
LOGIN = "ada-gh"
TEMPLATED, UNTEMPLATED = "dp-01-sql-basics", "dp-02-no-template"
TEMPLATE = "apranova-templates/dp-01-sql-basics"
REPO = f"{LOGIN}/{TEMPLATED}"
REDIRECT = "https://lms.example/api/users/github/callback/"


class Host:
    """A code host that answers an OAuth code with a token and makes repositories from
    templates; like the real adapter, a second make of the same name returns the first."""

    def __init__(self) -> None:
        self.exchanges: list[tuple[str, str, str]] = []
        self.created: list[tuple[str, str, str, str]] = []
        self.authorizations: list[tuple[str, str, str, str]] = []

    def authorize_url(self, redirect_uri: str, scope: str, state: str, verifier: str) -> str:
        self.authorizations.append((redirect_uri, scope, state, verifier))
        return f"https://github.example/login/oauth/authorize?state={state}"

    def exchange_code(self, code: str, redirect_uri: str, code_verifier: str
                      ) -> tuple[str, str]:
        self.exchanges.append((code, redirect_uri, code_verifier))
        return f"gho_{code}", LOGIN

    def create_from_template(self, token: str, template: str, owner: str,
                             name: str) -> HostedRepository:
        self.created.append((token, template, owner, name))
        return HostedRepository(f"{owner}/{name}", f"https://github.com/{owner}/{name}")


class Vault:
    def __init__(self) -> None:
        self.kept: dict[UUID, tuple[str, str]] = {}

    def store(self, account_id: UUID, login: str, token: str) -> None:
        self.kept[account_id] = (login, token)

    def token(self, account_id: UUID) -> str | None:
        found = self.kept.get(account_id)
        return found[1] if found else None


class Signer:
    def pkce_verifier(self, state: str) -> str:
        return f"verifier-of-{state}"


@dataclass
class World:
    store: EventStore
    github: GitHubCommands
    host: Host
    vault: Vault
    one_time: OneTime


def _commands(store: EventStore, host: Host | None, vault: Vault, one_time: OneTime,
              client_id: str | None = "client-1") -> GitHubCommands:
    return GitHubCommands(store, host, vault, one_time, Signer(), client_id,
                          "https://github.example/", REDIRECT)


def _content(approve_on_merge: bool) -> dict[str, Any]:
    def project(slug: str, number: int, template: str) -> dict[str, Any]:
        return {"slug": slug, "number": number, "title": slug, "type": "INTERNAL",
                "estimated_hours": 4, "github_template_repo": template,
                "approve_on_merge": approve_on_merge,
                "steps": [{"number": 1, "title": "Do it"}],
                "deliverables": [{"key": "notes", "title": "Notes", "type": "TEXT",
                                  "required": False}]}

    return {"tracks": [{"code": "DP", "name": "Data Professional", "projects": [
        project(TEMPLATED, 1, TEMPLATE), project(UNTEMPLATED, 2, "")]}]}


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        host, vault, one_time = Host(), Vault(), OneTime()
        store.commit(Account(id=STUDENT.id, email="ada@example.com", name="Ada",
                             role=Role.STUDENT.value, actor_id=None))
        yield World(store, _commands(store, host, vault, one_time), host, vault, one_time)


def given_curriculum(world: World, approve_on_merge: bool = False) -> None:
    curriculum = Curriculum()
    curriculum.publish(_content(approve_on_merge), None, "unit")
    world.store.commit(curriculum)


def given_linked(world: World) -> None:
    account = world.store.load(Account, STUDENT.id)
    account.link_github(LOGIN, actor_id=STUDENT.id)
    world.store.commit(account)
    world.vault.store(STUDENT.id, LOGIN, "gho_token")


def given_started(world: World, slug: str) -> Progress.ProjectStarted:
    """The student starts the project; the event a process manager is handed."""
    progress = (world.store.find(Progress, Progress.id_for(STUDENT.id, "DP"))
                or Progress(account_id=STUDENT.id, track="DP"))
    project = Content.parse(_content(False)).project(slug)
    progress.start(project, 1, actor_id=STUDENT.id)
    world.store.commit(progress)
    started = [e for e in world.store.events.get(progress.id)
               if isinstance(e, Progress.ProjectStarted)]
    return started[-1]


def given_repository(world: World, approve_on_merge: bool = False) -> None:
    given_curriculum(world, approve_on_merge)
    given_linked(world)
    world.github.create_repository(given_started(world, TEMPLATED))


def given_submitted(world: World) -> None:
    project = Content.parse(_content(False)).project(TEMPLATED)
    submission = Submission(student_id=STUDENT.id, project=TEMPLATED, track="DP",
                            curriculum_version=1, actor_id=STUDENT.id)
    submission.submit(project, "ready", actor_id=STUDENT.id)
    world.store.commit(submission)


def pull_request(number: int = 7, merged: bool = False, full_name: str = REPO
                 ) -> dict[str, Any]:
    return {"repository": {"full_name": full_name},
            "pull_request": {"number": number, "merged": merged,
                             "html_url": f"https://github.com/{full_name}/pull/{number}",
                             "head": {"sha": "abc123"}}}


SUBMISSION = Submission.id_for(STUDENT.id, TEMPLATED)
PROGRESS = Progress.id_for(STUDENT.id, "DP")


def recorded_pulls(world: World) -> list[Any]:
    return [e for e in world.store.events.get(SUBMISSION)
            if isinstance(e, Submission.PullRequestRecorded)]


# -- linking an account ----------------------------------------------------------------------

def test_the_authorize_url_carries_a_one_time_state_and_its_pkce_verifier(
        world: World) -> None:
    url = urlsplit(world.github.authorize_url(STUDENT, SESSION))
    state = parse_qs(url.query)["state"][0]
    assert world.one_time.keys == {state: (STUDENT.id, f"github-link:{SESSION}")}
    assert world.host.authorizations == [(REDIRECT, "repo", state, f"verifier-of-{state}")]


@pytest.mark.parametrize(("host", "client_id"), [(None, "client-1"), (Host(), None),
                                                 (Host(), "")])
def test_without_a_host_or_client_id_no_authorize_url_is_made(
        world: World, host: Host | None, client_id: str | None) -> None:
    github = _commands(world.store, host, world.vault, world.one_time, client_id)
    with pytest.raises(GitHubNotConfigured) as error:
        github.authorize_url(STUDENT, SESSION)
    assert error.value.code == "GITHUB_NOT_CONFIGURED"
    assert world.one_time.keys == {}


def test_completing_the_link_keeps_the_token_outside_the_log_and_records_the_login(
        world: World) -> None:
    state = parse_qs(urlsplit(world.github.authorize_url(STUDENT, SESSION)).query)["state"][0]
    login, position = world.github.complete_link(STUDENT, SESSION, state, "code-1")
    assert (login, position > 0) == (LOGIN, True)
    assert world.host.exchanges == [("code-1", REDIRECT, f"verifier-of-{state}")]
    assert world.vault.kept == {STUDENT.id: (LOGIN, "gho_code-1")}
    assert event_names(world.store, STUDENT.id) == ["Registered", "GitHubLinked"]
    assert world.store.load(Account, STUDENT.id).github_login == LOGIN
    assert world.one_time.keys == {}  # the state is spent


def test_linking_the_same_login_again_records_nothing_new(world: World) -> None:
    for code in ("code-1", "code-2"):
        state = world.one_time.issue(STUDENT.id, f"github-link:{SESSION}", 600)
        login, position = world.github.complete_link(STUDENT, SESSION, state, code)
    assert (login, position) == (LOGIN, 0)
    assert world.vault.kept[STUDENT.id] == (LOGIN, "gho_code-2")
    assert event_names(world.store, STUDENT.id) == ["Registered", "GitHubLinked"]


@pytest.mark.parametrize("case", ["unknown", "other_session", "other_account", "used"])
def test_a_state_that_is_not_this_flows_is_refused_before_the_host_is_asked(
        world: World, case: str) -> None:
    owner = uuid4() if case == "other_account" else STUDENT.id
    session = uuid4() if case == "other_session" else SESSION
    state = ("no-such-state" if case == "unknown"
             else world.one_time.issue(owner, f"github-link:{session}", 600))
    if case == "used":
        world.github.complete_link(STUDENT, SESSION, state, "code-0")
        world.host.exchanges.clear()
    with pytest.raises(Unauthenticated) as error:
        world.github.complete_link(STUDENT, SESSION, state, "code-1")
    assert error.value.code == "INVALID_STATE"
    assert world.host.exchanges == []
    assert world.store.load(Account, STUDENT.id).github_login == (
        LOGIN if case == "used" else None)


def test_a_valid_state_on_an_unconfigured_server_links_nothing(world: World) -> None:
    github = _commands(world.store, None, world.vault, world.one_time)
    state = world.one_time.issue(STUDENT.id, f"github-link:{SESSION}", 600)
    with pytest.raises(GitHubNotConfigured):
        github.complete_link(STUDENT, SESSION, state, "code-1")
    assert world.vault.kept == {}
    assert event_names(world.store, STUDENT.id) == ["Registered"]


# -- a repository for a started project ------------------------------------------------------

def test_a_started_project_gets_the_students_repository_from_its_template(
        world: World) -> None:
    given_curriculum(world)
    given_linked(world)
    position = world.github.create_repository(given_started(world, TEMPLATED))
    assert position > 0
    assert world.host.created == [("gho_token", TEMPLATE, LOGIN, TEMPLATED)]
    repository = world.store.load(Repository, Repository.id_for(REPO))
    assert (repository.full_name, repository.url, repository.student_id, repository.project,
            repository.track) == (REPO, f"https://github.com/{REPO}", STUDENT.id,
                                  TEMPLATED, "DP")


def test_a_redelivered_project_start_links_no_second_repository(world: World) -> None:
    given_curriculum(world)
    given_linked(world)
    started = given_started(world, TEMPLATED)
    world.github.create_repository(started)
    assert world.github.create_repository(started) == 0
    assert event_names(world.store, Repository.id_for(REPO)) == ["Linked"]


@pytest.mark.parametrize("missing", ["login", "token", "host"])
def test_without_a_linked_account_token_or_host_no_repository_is_made(
        world: World, missing: str) -> None:
    given_curriculum(world)
    if missing != "login":
        given_linked(world)
    if missing == "token":
        world.vault.kept.clear()
    if missing == "login":
        world.vault.store(STUDENT.id, LOGIN, "gho_token")
    github = (_commands(world.store, None, world.vault, world.one_time)
              if missing == "host" else world.github)
    assert github.create_repository(given_started(world, TEMPLATED)) == 0
    assert world.host.created == []
    assert world.store.find(Repository, Repository.id_for(REPO)) is None


def test_a_project_without_a_template_gets_no_repository(world: World) -> None:
    given_curriculum(world)
    given_linked(world)
    given_started(world, TEMPLATED)
    progress = world.store.load(Progress, PROGRESS)
    progress.approve(TEMPLATED, uuid4(), actor_id=uuid4())
    world.store.commit(progress)
    assert world.github.create_repository(given_started(world, UNTEMPLATED)) == 0
    assert world.host.created == []


# -- pull-request deliveries -----------------------------------------------------------------

@pytest.mark.parametrize(("action", "merged", "kind"), [
    ("opened", False, "opened"), ("reopened", False, "opened"),
    ("synchronize", False, "updated"), ("edited", False, "updated"),
    ("closed", False, "closed"), ("closed", True, "merged")])
def test_a_pull_request_is_noted_on_the_students_submission(
        world: World, action: str, merged: bool, kind: str) -> None:
    given_repository(world)
    position = world.github.record_pull_request("d-1", action, pull_request(merged=merged))
    assert position > 0
    assert event_names(world.store, SUBMISSION) == ["Drafted", "PullRequestRecorded"]
    [recorded] = recorded_pulls(world)
    assert (recorded.delivery_id, recorded.number, recorded.action, recorded.url,
            recorded.head_sha) == ("d-1", 7, kind, f"https://github.com/{REPO}/pull/7",
                                   "abc123")
    submission = world.store.load(Submission, SUBMISSION)
    assert (submission.status, submission.curriculum_version) == ("draft", 1)


def test_a_replayed_delivery_is_noted_once(world: World) -> None:
    given_repository(world)
    world.github.record_pull_request("d-1", "opened", pull_request())
    assert world.github.record_pull_request("d-1", "opened", pull_request()) == 0
    world.github.record_pull_request("d-2", "synchronize", pull_request())
    assert [e.action for e in recorded_pulls(world)] == ["opened", "updated"]


def test_the_repository_is_found_whatever_the_case_of_its_name(world: World) -> None:
    given_repository(world)
    world.github.record_pull_request("d-1", "opened", pull_request(full_name=REPO.upper()))
    assert len(recorded_pulls(world)) == 1


@pytest.mark.parametrize(("action", "payload"), [
    ("labeled", pull_request()),
    ("", pull_request()),
    ("opened", {"pull_request": {"number": 7}}),
    ("opened", {"repository": None, "pull_request": {"number": 7}}),
    ("opened", {"repository": {"full_name": ""}}),
    ("opened", {"repository": {}}),
    ("opened", pull_request(full_name="mallory/unknown-repo")),
])
def test_deliveries_that_name_no_known_repository_or_action_are_ignored(
        world: World, action: str, payload: dict[str, Any]) -> None:
    given_repository(world)
    assert world.github.record_pull_request("d-1", action, payload) == 0
    assert world.store.find(Submission, SUBMISSION) is None


def test_a_repository_whose_project_is_not_started_is_ignored(world: World) -> None:
    given_repository(world)
    world.store.commit(Repository(full_name=f"{LOGIN}/{UNTEMPLATED}", url="https://x",
                                  student_id=STUDENT.id, project=UNTEMPLATED, track="DP"))
    assert world.github.record_pull_request(
        "d-1", "opened", pull_request(full_name=f"{LOGIN}/{UNTEMPLATED}")) == 0
    assert world.store.find(Submission, Submission.id_for(STUDENT.id, UNTEMPLATED)) is None


def test_missing_fields_other_than_the_number_are_noted_as_empty(world: World) -> None:
    given_repository(world)
    world.github.record_pull_request("d-1", "opened", {"repository": {"full_name": REPO},
                                                       "pull_request": {"number": 3,
                                                                        "head": None}})
    [recorded] = recorded_pulls(world)
    assert (recorded.number, recorded.url, recorded.head_sha) == (3, "", "")


@pytest.mark.parametrize("number", [None, 0, -4, True, "", "x7", "1" * 30, 2**70, 1.5])
def test_a_pull_request_without_a_usable_number_is_ignored(world: World, number: Any) -> None:
    given_repository(world)
    assert world.github.record_pull_request("d-1", "opened", {
        "repository": {"full_name": REPO}, "pull_request": {"number": number}}) == 0
    assert world.store.find(Submission, SUBMISSION) is None


@pytest.mark.parametrize("merged", ["false", "true", 1, [], {"x": 1}])
def test_only_a_json_true_counts_as_merged(world: World, merged: Any) -> None:
    given_repository(world)
    payload = pull_request()
    payload["pull_request"]["merged"] = merged
    world.github.record_pull_request("d-1", "closed", payload)
    [recorded] = recorded_pulls(world)
    assert recorded.action == "closed"


def test_scalar_fields_of_another_type_are_coerced(world: World) -> None:
    given_repository(world)
    world.github.record_pull_request("d-1", "opened", {
        "repository": {"full_name": REPO},
        "pull_request": {"number": "12", "html_url": 42, "head": {"sha": 99}}})
    [recorded] = recorded_pulls(world)
    assert (recorded.number, recorded.url, recorded.head_sha) == (12, "42", "99")


@pytest.mark.parametrize("payload", [
    {"repository": REPO},
    {"repository": {"full_name": REPO}, "pull_request": ["not", "an", "object"]},
    {"repository": {"full_name": REPO}, "pull_request": {"number": 7, "head": "abc123"}},
])
def test_deliveries_with_non_object_fields_are_ignored(
        world: World, payload: dict[str, Any]) -> None:
    given_repository(world)
    assert world.github.record_pull_request("d-1", "opened", payload) == 0


def test_a_merge_approves_a_submitted_project_when_configured_to(world: World) -> None:
    given_repository(world, approve_on_merge=True)
    given_submitted(world)
    world.github.record_pull_request("d-1", "closed", pull_request(merged=True))
    assert event_names(world.store, SUBMISSION) == [
        "Drafted", "Submitted", "PullRequestRecorded", "Approved"]
    approved = list(world.store.events.get(SUBMISSION))[-1]
    assert isinstance(approved, Submission.Approved)
    assert (approved.actor_id, approved.feedback) == (GITHUB_ACTOR, "Approved on merge")
    assert event_names(world.store, PROGRESS)[-1] == "ProjectApproved"
    assert world.store.load(Progress, PROGRESS).approved == {TEMPLATED}


@pytest.mark.parametrize(("approve_on_merge", "submitted", "merged"), [
    (False, True, True),   # not configured to approve
    (True, False, True),   # nothing submitted to approve
    (True, True, False),   # closed without merging
])
def test_otherwise_a_merge_approves_nothing(world: World, approve_on_merge: bool,
                                            submitted: bool, merged: bool) -> None:
    given_repository(world, approve_on_merge=approve_on_merge)
    if submitted:
        given_submitted(world)
    world.github.record_pull_request("d-1", "closed", pull_request(merged=merged))
    assert event_names(world.store, SUBMISSION)[-1] == "PullRequestRecorded"
    assert world.store.load(Submission, SUBMISSION).status == (
        "submitted" if submitted else "draft")
    assert "ProjectApproved" not in event_names(world.store, PROGRESS)
