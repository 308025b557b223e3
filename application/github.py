"""GitHub: linking an account by OAuth, repositories from templates, pull-request events."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from application.accounts import Actor
from application.auth import Unauthenticated
from application.eventstore import EventStore, retry_on_conflict
from application.ports import CodeHost, OneTimeTokens, StateSigner, TokenVault
from domain.accounts import Account
from domain.curriculum import Curriculum
from domain.errors import Conflict
from domain.ids import derived_id
from domain.progress import Progress
from domain.repositories import Repository
from domain.submissions import REVIEWABLE, Submission

# Who approves when a merge is configured to approve: the integration, not a person.
GITHUB_ACTOR = derived_id("system", "github")
PR_ACTIONS = {"opened": "opened", "reopened": "opened", "synchronize": "updated",
              "edited": "updated", "closed": "closed"}


class GitHubNotConfigured(Conflict):
    code = "GITHUB_NOT_CONFIGURED"


STATE_SECONDS = 600


def _state_purpose(session_id: UUID) -> str:
    return f"github-link:{session_id}"


class GitHubCommands:
    def __init__(self, store: EventStore, host: CodeHost | None, vault: TokenVault,
                 one_time: OneTimeTokens,
                 states: StateSigner, client_id: str | None, oauth_base: str,
                 redirect_uri: str) -> None:
        self.store = store
        self.host = host
        self.vault = vault
        self.one_time = one_time
        self.states = states
        self.client_id = client_id
        self.oauth_base = oauth_base.rstrip("/")
        self.redirect_uri = redirect_uri

    def _host(self) -> CodeHost:
        if self.host is None or not self.client_id:
            raise GitHubNotConfigured("GitHub is not configured on this server")
        return self.host

    def authorize_url(self, actor: Actor, session_id: UUID) -> str:
        """Where to send the student. The `state` is a one-time secret kept server-side
        for ten minutes, bound to this account and this session; the flow uses PKCE."""
        host = self._host()
        state = self.one_time.issue(actor.id, _state_purpose(session_id), STATE_SECONDS)
        return host.authorize_url(self.redirect_uri, "repo", state,
                                  self.states.pkce_verifier(state))

    def complete_link(self, actor: Actor, session_id: UUID, state: str, code: str
                      ) -> tuple[str, int]:
        """Link the account that asked, in the session that asked, once per state."""
        owner = self.one_time.consume(state, _state_purpose(session_id))
        if owner is None or owner != actor.id:
            raise Unauthenticated("The OAuth state is invalid, used, expired or not yours",
                                  code="INVALID_STATE")
        account_id = actor.id
        token, login = self._host().exchange_code(code, self.redirect_uri,
                                                  self.states.pkce_verifier(state))
        self.vault.store(account_id, login, token)

        def command() -> int:
            account = self.store.load(Account, account_id, "User")
            account.link_github(login, actor_id=account_id)
            return self.store.commit(account)

        return login, retry_on_conflict(command)

    def create_repository(self, event: Progress.ProjectStarted) -> int:
        """For a started project: the student's repository from the project's template."""
        progress = self.store.load(Progress, event.originator_id, "Progress")
        account = self.store.load(Account, progress.account_id, "User")
        token = self.vault.token(account.id)
        if account.github_login is None or token is None or self.host is None:
            return 0  # not linked: nothing to create
        curriculum = self.store.load(Curriculum, Curriculum.ID, "Curriculum")
        project = curriculum.content(event.curriculum_version).project(event.project)
        if not project.github_template_repo:
            return 0
        repo = self.host.create_from_template(token, project.github_template_repo,
                                              account.github_login, project.slug)
        if self.store.find(Repository, Repository.id_for(repo.full_name)) is not None:
            return 0
        return self.store.commit(Repository(full_name=repo.full_name, url=repo.url,
                                            student_id=account.id, project=project.slug,
                                            track=progress.track))

    def record_pull_request(self, delivery_id: str, action: str, payload: dict[str, Any]
                            ) -> int:
        """Note a pull request on the matching submission; unknown repositories are ignored."""
        repository, pull = payload.get("repository"), payload.get("pull_request") or {}
        head = pull.get("head") or {} if isinstance(pull, dict) else None
        # A signed delivery of another shape than GitHub's is unusable, like one of an
        # unknown repository: ignored, not an error.
        if not (isinstance(repository, dict) and isinstance(pull, dict)
                and isinstance(head, dict)):
            return 0
        raw_number = pull.get("number")
        number = int(raw_number) if (isinstance(raw_number, int)
                                     and not isinstance(raw_number, bool)) or (
            isinstance(raw_number, str) and raw_number.isascii() and raw_number.isdigit()
            and len(raw_number) < 19) else 0
        full_name = str(repository.get("full_name") or "")
        # Without a pull request number there is no pull request to note.
        if action not in PR_ACTIONS or not full_name or not 0 < number < 2**63:
            return 0
        # Only JSON `true` is a merge: a string "false" is truthy.
        kind = "merged" if action == "closed" and pull.get("merged") is True \
            else PR_ACTIONS[action]

        def command() -> int:
            repo = self.store.find(Repository, Repository.id_for(full_name))
            if repo is None:
                return 0
            progress = self.store.find(Progress, Progress.id_for(repo.student_id, repo.track))
            if progress is None or not progress.is_started(repo.project):
                return 0
            submission = self.store.find(Submission, Submission.id_for(
                repo.student_id, repo.project)) or Submission(
                    student_id=repo.student_id, project=repo.project, track=progress.track,
                    curriculum_version=progress.version_of(repo.project),
                    actor_id=repo.student_id)
            if not submission.record_pull_request(
                    delivery_id, number, kind, str(pull.get("html_url") or ""),
                    str(head.get("sha") or "")):
                return 0
            touched: list[Any] = [submission]
            curriculum = self.store.load(Curriculum, Curriculum.ID, "Curriculum")
            project = curriculum.content(submission.curriculum_version).project(repo.project)
            if kind == "merged" and project.approve_on_merge and \
                    submission.status in REVIEWABLE:
                submission.approve("Approved on merge", {}, actor_id=GITHUB_ACTOR)
                progress.approve(repo.project, submission.id, actor_id=GITHUB_ACTOR)
                touched.append(progress)
            return self.store.commit(*touched)

        return retry_on_conflict(command)


