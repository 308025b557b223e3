"""Process-manager policies on the in-memory log, one policy and one event at a time:
given events recorded through the commands, when a policy handles one of them (sometimes
twice, as at-least-once delivery may), then what the fakes of the ports were asked to do
(mail, chat, generator, code host, container engine) and the events recorded."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import count
from types import FrameType
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from application.accounts import AccountCommands
from application.auth import PASSWORD_RESET, VERIFY_EMAIL, AuthCommands, LoginLimits
from application.authorization import Actor, PaidAccess
from application.curriculum import CurriculumCommands
from application.eventstore import EventStore
from application.github import GitHubCommands
from application.payments import PaymentCommands
from application.ports import (
    Email,
    GeneratedQuestions,
    GenerationError,
    PaymentIntent,
    QuizRequest,
)
from application.processes import (
    AuthPolicies,
    GitHubPolicies,
    MailPolicies,
    PaymentPolicies,
    Policy,
    QuizPolicies,
    SubmissionPolicies,
    WorkspacePolicies,
)
from application.quizzes import QuizCommands
from application.workspaces import WorkspaceCommands
from domain.accounts import Account, ResetRequests
from domain.payments import Payment
from domain.progress import Progress
from domain.quizzes import Quiz
from domain.repositories import Repository
from domain.roles import Role, Track
from domain.students import Student
from domain.submissions import Submission
from domain.workspaces import Workspace
from infrastructure.jwt_tokens import JwtTokens
from tests.unit.fakes import (
    Attempts,
    Clock,
    Credentials,
    Hasher,
    Limiter,
    Mailbox,
    OneTime,
    Sessions,
    event_names,
    in_memory_store,
)
from tests.unit.test_curriculum_commands import Files
from tests.unit.test_github_commands import TEMPLATE, TEMPLATED, Host, Signer, Vault, _content
from tests.unit.test_payment_and_workspace_commands import Passwords
from tests.unit.test_workspace_commands import POLICY, Engine

PASSWORD = "correct horse battery staple"
URL = "https://lms.example"


class Chat:
    def __init__(self) -> None:
        self.posts: list[str] = []

    def post(self, text: str) -> None:
        self.posts.append(text)


class Gateway:
    def __init__(self) -> None:
        self.refunds: list[tuple[str, str]] = []

    def create_intent(self, amount: int, currency: str, metadata: dict[str, str],
                      idempotency_key: str) -> PaymentIntent:
        return PaymentIntent(f"pi_{uuid4().hex}", "secret")

    def refund(self, intent_id: str, idempotency_key: str) -> str:
        self.refunds.append((intent_id, idempotency_key))
        return f"re_{len(self.refunds)}"


def handle(policies: list[Policy], name: str, event: Any) -> None:
    """What a worker does with one message: the named policy, given an event it wants."""
    [policy] = [p for p in policies if p.name == name]
    assert isinstance(event, policy.events)
    policy.handle(event)


def recorded(store: EventStore, aggregate_id: UUID, kind: type) -> Any:
    """The last event of that kind the aggregate recorded."""
    return [e for e in store.events.get(aggregate_id) if isinstance(e, kind)][-1]


@dataclass
class World:
    store: EventStore
    accounts: AccountCommands
    mail: Mailbox
    chat: Chat
    one_time: OneTime
    numbers: Iterator[int]

    @property
    def mail_policies(self) -> list[Policy]:
        return MailPolicies(self.store, self.mail, self.one_time, URL + "/").policies()

    @property
    def submission_policies(self) -> list[Policy]:
        return SubmissionPolicies(self.store, self.mail, self.chat, URL + "/").policies()

    def admin(self, role: Role = Role.ADMIN) -> Actor:
        created = self.accounts.create_administrator(
            f"admin{next(self.numbers)}@example.com", "Root", PASSWORD, role)
        return Actor(created.account_id, role)

    def student(self, name: str, track: Track = Track.DATA_PROFESSIONAL) -> Actor:
        created = self.accounts.register_student(
            f"{name.lower()}{next(self.numbers)}@example.com", name, PASSWORD, track)
        return Actor(created.account_id, Role.STUDENT)

    def trainer(self, name: str) -> Actor:
        created = self.accounts.create_account(
            self.admin(), f"{name.lower()}{next(self.numbers)}@example.com", name, PASSWORD,
            Role.TRAINER, None)
        return Actor(created.account_id, Role.TRAINER)

    def account(self, actor: Actor) -> Account:
        return self.store.load(Account, actor.id)

    def to(self, actor: Actor) -> list[Email]:
        address = self.account(actor).email
        return [m for m in self.mail.sent if m.to == address]


@pytest.fixture
def world() -> Iterator[World]:
    with in_memory_store() as store:
        yield World(store, AccountCommands(store, Credentials(), Hasher(), Sessions()),
                    Mailbox(), Chat(), OneTime(), count(1))


# -- the registry ----------------------------------------------------------------------------

def test_every_policy_has_its_own_name_and_topics_that_resolve_to_its_events(
        world: World) -> None:
    store = world.store
    quizzes = QuizCommands(store, Clock(), Attempts())
    payments = PaymentCommands(store, Gateway(), {"DP": 100, "FSD": 200}, "eur")
    auth = AuthCommands(store, Credentials(), Hasher(), Sessions(),
                        JwtTokens("unit-" + "s" * 40, "apranova", "apranova-api", 900, 3600),
                        world.one_time, Limiter(), Clock(), LoginLimits())
    github = GitHubCommands(store, Host(), Vault(), world.one_time, Signer(), "client",
                            "https://github.example", URL)
    workspaces = WorkspaceCommands(store, Engine(), Passwords(), Clock(), POLICY,
                                   PaidAccess(store, False))
    policies = [*world.mail_policies, *world.submission_policies,
                *QuizPolicies(quizzes, Generator([])).policies(),
                *PaymentPolicies(payments, store, world.chat).policies(),
                *AuthPolicies(auth).policies(), *GitHubPolicies(github).policies(),
                *WorkspacePolicies(workspaces).policies()]
    names = [p.name for p in policies]
    assert len(names) == len(set(names)) == 18  # a message names its policy
    for policy in policies:
        assert policy.topics == tuple(get_topic(cls) for cls in policy.events)
        assert tuple(resolve_topic(t) for t in policy.topics) == policy.events
    limits = {p.name: p.time_limit_seconds for p in policies}
    assert (limits["quiz_generation"], limits["workspace_provision"],
            limits["welcome_email"]) == (600.0, 900.0, 120.0)


# -- mail ------------------------------------------------------------------------------------

def test_the_welcome_email_names_the_full_stack_track_and_the_public_address(
        world: World) -> None:
    ada = world.student("Ada", Track.FULL_STACK)
    handle(world.mail_policies, "welcome_email",
           recorded(world.store, Student.id_for(ada.id), Student.Enrolled))
    [welcome] = world.to(ada)
    assert welcome.subject == "Welcome to ApraNova"
    assert "Hello Ada," in welcome.body
    assert "Full-Stack Development track" in welcome.body
    assert f"waiting for you at {URL}." in welcome.body  # the trailing slash is gone


def test_an_address_verified_before_delivery_gets_no_verification_link(world: World) -> None:
    ada = world.student("Ada")
    account = world.account(ada)
    account.verify_email(actor_id=ada.id)
    world.store.commit(account)
    handle(world.mail_policies, "verification_email",
           recorded(world.store, ada.id, Account.Registered))
    assert world.mail.sent == []
    assert world.one_time.keys == {}  # no key issued either


def test_the_verification_link_carries_a_key_for_that_account_and_purpose(
        world: World) -> None:
    ada = world.student("Ada")
    handle(world.mail_policies, "verification_email",
           recorded(world.store, ada.id, Account.Registered))
    [mail] = world.to(ada)
    [key] = world.one_time.keys
    assert world.one_time.peek(key, VERIFY_EMAIL) == ada.id
    assert f"{URL}/api/auth/verify-email/{key}/" in mail.body
    assert "valid for 48 hours" in mail.body


def test_a_reset_request_mails_a_key_that_resets_only_that_accounts_password(
        world: World) -> None:
    ada = world.student("Ada")
    account = world.account(ada)
    account.request_password_reset(actor_id=None)
    world.store.commit(account)
    handle(world.mail_policies, "password_reset_email",
           recorded(world.store, ada.id, Account.PasswordResetRequested))
    [mail] = world.to(ada)
    [key] = world.one_time.keys
    assert mail.subject == "Reset your ApraNova password"
    assert key in mail.body and f"{URL}/api/auth/password/reset/confirm/" in mail.body
    assert "valid for 60 minutes" in mail.body
    assert world.one_time.peek(key, PASSWORD_RESET) == ada.id
    assert world.one_time.peek(key, VERIFY_EMAIL) is None


def test_an_account_deactivated_before_delivery_gets_no_reset_key(world: World) -> None:
    ada = world.student("Ada")
    account = world.account(ada)
    account.request_password_reset(actor_id=None)
    world.store.commit(account)
    world.accounts.deactivate(world.admin(Role.SUPERADMIN), ada.id, "left")
    handle(world.mail_policies, "password_reset_email",
           recorded(world.store, ada.id, Account.PasswordResetRequested))
    assert world.to(ada) == []
    assert world.one_time.keys == {}


def test_a_reset_asked_for_a_known_address_is_passed_on_to_the_account_and_mailed(
        world: World) -> None:
    ada = world.student("Ada")
    email = world.account(ada).email
    auth = AuthCommands(world.store, Credentials(), Hasher(), Sessions(),
                        JwtTokens("unit-" + "s" * 40, "apranova", "apranova-api", 900, 3600),
                        world.one_time, Limiter(), Clock(), LoginLimits())
    auth.request_password_reset(email.upper(), "198.51.100.7")
    auth.request_password_reset("nobody@example.com", "198.51.100.7")
    policies = AuthPolicies(auth).policies()
    handle(policies, "password_reset_request", recorded(
        world.store, ResetRequests.id_for(email), ResetRequests.Asked))
    handle(policies, "password_reset_request", recorded(
        world.store, ResetRequests.id_for("nobody@example.com"), ResetRequests.Asked))
    assert event_names(world.store, ada.id)[-1] == "PasswordResetRequested"
    # The unknown address leads to no account and no event beyond the request itself.
    assert event_names(world.store, ResetRequests.id_for("nobody@example.com")) == [
        "Opened", "Asked"]
    handle(world.mail_policies, "password_reset_email",
           recorded(world.store, ada.id, Account.PasswordResetRequested))
    assert [m.subject for m in world.mail.sent] == ["Reset your ApraNova password"]


# -- submissions -----------------------------------------------------------------------------

def _curriculum(world: World) -> CurriculumCommands:
    curriculum = CurriculumCommands(world.store, Files(), 1 << 20,
                                    PaidAccess(world.store, False))
    curriculum.publish(_content(approve_on_merge=False), None, "unit")
    return curriculum


def _submitted(world: World, student: Actor, curriculum: CurriculumCommands) -> UUID:
    curriculum.start_project(student, TEMPLATED)
    return curriculum.create_submission(student, TEMPLATED, {"notes": "Joins."}, True,
                                        "ready").id


def test_a_submission_is_announced_in_chat_and_mailed_to_the_assigned_trainer(
        world: World) -> None:
    ada, tom = world.student("Ada"), world.trainer("Tom")
    world.accounts.assign_trainer(world.admin(), ada.id, tom.id)
    submission = _submitted(world, ada, _curriculum(world))
    submitted = recorded(world.store, submission, Submission.Submitted)
    handle(world.submission_policies, "submission_chat", submitted)
    handle(world.submission_policies, "submission_trainer_email", submitted)
    assert world.chat.posts == [
        f":inbox_tray: Ada submitted {TEMPLATED} (round 1) for review"]
    [mail] = world.to(tom)
    assert mail.subject == f"New submission: {TEMPLATED} by Ada"
    assert mail.body.startswith("Hello Tom,")
    assert "(round 1)" in mail.body and f"{URL}/api/curriculum/review-queue/" in mail.body
    assert world.to(ada) == []


def test_a_submission_of_a_student_without_a_trainer_is_mailed_to_nobody(
        world: World) -> None:
    ada = world.student("Ada")
    submission = _submitted(world, ada, _curriculum(world))
    handle(world.submission_policies, "submission_trainer_email",
           recorded(world.store, submission, Submission.Submitted))
    assert world.mail.sent == []


def test_a_submission_of_someone_never_enrolled_is_mailed_to_nobody(world: World) -> None:
    ghost = uuid4()
    world.store.commit(Account(id=ghost, email="ghost@example.com", name="Ghost",
                               role=Role.STUDENT.value, actor_id=None))
    curriculum = _curriculum(world)
    project = curriculum.curriculum().content(1).project(TEMPLATED)
    submission = Submission(student_id=ghost, project=TEMPLATED, track="DP",
                            curriculum_version=1, actor_id=ghost)
    submission.submit(project, "", actor_id=ghost)
    world.store.commit(submission)
    submitted = recorded(world.store, submission.id, Submission.Submitted)
    handle(world.submission_policies, "submission_trainer_email", submitted)
    handle(world.submission_policies, "submission_chat", submitted)
    assert world.mail.sent == []
    assert world.chat.posts == [
        f":inbox_tray: Ghost submitted {TEMPLATED} (round 1) for review"]


def test_an_approval_is_told_in_chat_and_to_the_student_with_the_feedback(
        world: World) -> None:
    ada, tom = world.student("Ada"), world.trainer("Tom")
    world.accounts.assign_trainer(world.admin(), ada.id, tom.id)
    curriculum = _curriculum(world)
    submission = _submitted(world, ada, curriculum)
    curriculum.review(tom, submission, "approve", "Clean joins.", {"sql": 5})
    approved = recorded(world.store, submission, Submission.Approved)
    handle(world.submission_policies, "review_chat", approved)
    handle(world.submission_policies, "review_student_email", approved)
    assert world.chat.posts == [f":memo: {TEMPLATED} by Ada approved"]
    [mail] = world.to(ada)
    assert mail.subject == f"Your submission for {TEMPLATED} was approved"
    assert "Feedback:\nClean joins.\n" in mail.body
    assert "The next project is now unlocked." in mail.body
    assert world.to(tom) == []


def test_a_request_for_changes_is_told_as_such_and_an_empty_feedback_as_none(
        world: World) -> None:
    ada, tom = world.student("Ada"), world.trainer("Tom")
    world.accounts.assign_trainer(world.admin(), ada.id, tom.id)
    curriculum = _curriculum(world)
    submission = _submitted(world, ada, curriculum)
    curriculum.review(tom, submission, "request_changes", "Explain the LEFT JOIN.", {})
    returned = recorded(world.store, submission, Submission.ChangesRequested)
    handle(world.submission_policies, "review_chat", returned)
    handle(world.submission_policies, "review_student_email", returned)
    assert world.chat.posts == [f":memo: {TEMPLATED} by Ada needs changes"]
    [mail] = world.to(ada)
    assert mail.subject == (
        f"Your submission for {TEMPLATED} was returned with requested changes")
    assert "Explain the LEFT JOIN." in mail.body
    assert "Update it and submit again when ready." in mail.body
    assert "unlocked" not in mail.body
    # Round two, approved without a word: the email says so rather than leaving a gap.
    curriculum.update_submission(ada, submission, {"notes": "Joins, explained."}, True, "")
    curriculum.review(tom, submission, "approve", "", {})
    handle(world.submission_policies, "review_student_email",
           recorded(world.store, submission, Submission.Approved))
    assert "Feedback:\n(none)\n" in world.to(ada)[-1].body


# -- quiz generation -------------------------------------------------------------------------

class Generator:
    """Answers every request with `outcome` (questions, or an exception to raise), and
    keeps the requests."""

    def __init__(self, outcome: Any, provenance: Any = None) -> None:
        self.outcome = outcome
        self.provenance = {"generator": "fake"} if provenance is None else provenance
        self.requests: list[QuizRequest] = []

    def generate(self, request: QuizRequest) -> GeneratedQuestions:
        self.requests.append(request)
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return GeneratedQuestions(self.outcome, self.provenance)


def _question(text: str, correct: int = 0, options: int = 4) -> dict[str, Any]:
    return {"text": text, "type": "SINGLE", "explanation": "because",
            "options": [{"text": f"{text} {i}", "correct": i == correct}
                        for i in range(options)]}


TRAINER = Actor(uuid4(), Role.TRAINER)


@pytest.fixture
def quizzes(world: World) -> QuizCommands:
    return QuizCommands(world.store, Clock(), Attempts())


def _generate(store: EventStore, quizzes: QuizCommands, generator: Generator,
              num_questions: int = 1, generation_type: str = "PROMPT") -> UUID:
    """Given a requested quiz, when the generation policy handles its request."""
    quiz_id = quizzes.request(TRAINER, "Joins", "SQL joins", generation_type,
                              num_questions, "DP").id
    handle(QuizPolicies(quizzes, generator).policies(), "quiz_generation",
           recorded(store, quiz_id, Quiz.Requested))
    return quiz_id


def test_the_generator_is_asked_what_the_trainer_requested(
        world: World, quizzes: QuizCommands) -> None:
    generator = Generator([_question("Which join keeps every left row?")])
    quiz_id = _generate(world.store, quizzes, generator, generation_type="WEB_SEARCH")
    assert generator.requests == [
        QuizRequest(quiz_id, "Joins", "SQL joins", "WEB_SEARCH", 1, "DP")]


def test_generated_questions_are_recorded_with_ids_and_the_options_kept(
        world: World, quizzes: QuizCommands) -> None:
    question = _question("Which join keeps every left row?", correct=2)
    quiz_id = _generate(world.store, quizzes, Generator([question], {"model": "m-1"}))
    quiz = world.store.load(Quiz, quiz_id)
    assert quiz.status == "draft"
    [stored] = quiz.questions
    assert stored["id"].startswith("q") and all(o["id"].startswith("o")
                                                for o in stored["options"])
    assert sorted((o["text"], o["correct"]) for o in stored["options"]) == sorted(
        (o["text"], o["correct"]) for o in question["options"])
    assert recorded(world.store, quiz_id, Quiz.Generated).provenance == {"model": "m-1"}


def test_a_generation_error_is_recorded_with_its_reason_and_provenance(
        world: World, quizzes: QuizCommands) -> None:
    refusal = GenerationError("the model refused", {"generator": "gemini", "attempts": 3})
    quiz_id = _generate(world.store, quizzes, Generator(refusal))
    failed = recorded(world.store, quiz_id, Quiz.GenerationFailed)
    assert (failed.reason, failed.provenance) == (
        "the model refused", {"generator": "gemini", "attempts": 3})
    assert world.store.load(Quiz, quiz_id).status == "failed"


def test_a_generation_error_without_a_reason_is_recorded_as_a_failed_generation(
        world: World, quizzes: QuizCommands) -> None:
    quiz_id = _generate(world.store, quizzes, Generator(GenerationError("", {})))
    assert recorded(world.store, quiz_id, Quiz.GenerationFailed).reason == (
        "generation failed")


def test_a_crashing_generator_leaves_a_failure_naming_the_error_and_the_generator(
        world: World, quizzes: QuizCommands) -> None:
    quiz_id = _generate(world.store, quizzes, Generator(ConnectionResetError("peer gone")))
    failed = recorded(world.store, quiz_id, Quiz.GenerationFailed)
    assert failed.reason == "generator error: ConnectionResetError('peer gone')"
    assert failed.provenance == {"generator": "Generator"}
    assert world.store.load(Quiz, quiz_id).status == "failed"


def test_a_redelivered_request_keeps_the_first_outcome(
        world: World, quizzes: QuizCommands) -> None:
    quiz_id = _generate(world.store, quizzes, Generator([_question("First?")]))
    requested = recorded(world.store, quiz_id, Quiz.Requested)
    for outcome in ([_question("Second?")], GenerationError("late failure", {}),
                    RuntimeError("boom")):
        handle(QuizPolicies(quizzes, Generator(outcome)).policies(), "quiz_generation",
               requested)
    assert event_names(world.store, quiz_id) == ["Requested", "Generated"]
    assert [q["text"] for q in world.store.load(Quiz, quiz_id).questions] == ["First?"]


@pytest.mark.parametrize(("questions", "problem"), [
    ([_question("Only one?")], "expected 2 questions, got 1"),
    ([_question("Nul\x00 in the text?"), _question("Fine?")],
     "question 1 holds text that cannot be stored (text: Text must not contain the NUL"),
    ([_question("Fine?"), {**_question("Surrogate?"), "options": [
        {"text": "\ud83d", "correct": True}, {"text": "b", "correct": False}]}],
     "question 2 holds text that cannot be stored (options[*].text: Text must not "
     "contain a lone surrogate (U+D83D))"),
    ([_question("Same?"), _question("Same?")], "question 2 repeats an earlier question"),
    ([{**_question("Two right?"), "options": [{"text": "a", "correct": True},
                                              {"text": "b", "correct": True}]},
      _question("Fine?")], "question 1 is SINGLE and needs exactly one correct option"),
    ([{**_question("Bad type?"), "type": "ESSAY"}, _question("Fine?")],
     "question 1 must be SINGLE or MULTIPLE"),
    ([{"text": "No options at all?", "type": "SINGLE"}, _question("Fine?")],
     "question 1 needs 2 to 6 options"),
    ([{**_question("Number?"), "text": 42}, _question("Fine?")], "question 1 has no text"),
], ids=["count", "nul", "surrogate", "duplicate", "two-correct", "type", "no-options",
        "text-not-str"])
def test_invalid_generated_questions_are_recorded_as_a_failure_saying_why(
        world: World, quizzes: QuizCommands, questions: list[dict[str, Any]],
        problem: str) -> None:
    quiz_id = _generate(world.store, quizzes, Generator(questions, {"model": "m"}),
                        num_questions=2)
    failed = recorded(world.store, quiz_id, Quiz.GenerationFailed)
    assert failed.reason.startswith("generated questions were invalid: ")
    # Options are shuffled before they are checked: where one sits says nothing.
    assert problem in re.sub(r"options\[\d\]", "options[*]", failed.reason)
    assert "\x00" not in failed.reason and "\ud83d" not in failed.reason
    assert failed.provenance == {"model": "m"}
    assert world.store.load(Quiz, quiz_id).questions == []


def test_unstorable_text_in_what_a_generator_says_of_itself_is_replaced(
        world: World, quizzes: QuizCommands) -> None:
    provenance = {"model\x00": "gem\ud800ini", "prompt": ["a\x00b"], "attempts": 2}
    good = _generate(world.store, quizzes, Generator([_question("Fine?")], provenance))
    assert recorded(world.store, good, Quiz.Generated).provenance == {
        "model\ufffd": "gem\ufffdini", "prompt": ["a\ufffdb"], "attempts": 2}
    bad = _generate(world.store, quizzes, Generator(
        GenerationError("refused\x00 \udfff", provenance)))
    failed = recorded(world.store, bad, Quiz.GenerationFailed)
    assert failed.reason == "refused\ufffd \ufffd"
    assert failed.provenance["model\ufffd"] == "gem\ufffdini"


def test_a_huge_failure_reason_is_cut_to_two_thousand_characters(
        world: World, quizzes: QuizCommands) -> None:
    quiz_id = _generate(world.store, quizzes, Generator(GenerationError("x" * 1_000_000, {})))
    assert recorded(world.store, quiz_id, Quiz.GenerationFailed).reason == "x" * 2000


def test_an_exception_with_unstorable_text_is_recorded_readably(
        world: World, quizzes: QuizCommands) -> None:
    quiz_id = _generate(world.store, quizzes, Generator(ValueError("bad\x00\ud800")))
    reason = recorded(world.store, quiz_id, Quiz.GenerationFailed).reason
    assert reason.startswith("generator error: ValueError(")
    assert "\x00" not in reason and "\ud800" not in reason


@pytest.mark.parametrize("questions", [
    ["Which join keeps every left row?"],
    [{"text": "Options missing?", "type": "SINGLE", "options": None}],
    [{"text": "Options as text?", "type": "SINGLE", "options": ["LEFT", "INNER"]}],
    [{"text": "No key?", "type": "SINGLE", "options": [{"text": "a"}, {"text": "b"}]}],
], ids=["question-str", "options-null", "options-str", "option-without-correct"])
def test_malformed_generator_output_is_recorded_as_a_failure(
        world: World, quizzes: QuizCommands, questions: list[Any]) -> None:
    quiz_id = _generate(world.store, quizzes, Generator(questions))
    assert world.store.load(Quiz, quiz_id).status == "failed"


def test_only_json_true_marks_a_generated_option_correct(
        world: World, quizzes: QuizCommands) -> None:
    question = {"text": "Which are joins?", "type": "MULTIPLE", "explanation": "",
                "options": [{"text": "LEFT", "correct": True},
                            {"text": "INNER", "correct": True},
                            {"text": "GROUP BY", "correct": "false"},
                            {"text": "WHERE", "correct": False}]}
    quiz_id = _generate(world.store, quizzes, Generator([question]))
    quiz = world.store.load(Quiz, quiz_id)
    assert quiz.status != "generating"
    correct = {o["text"] for q in quiz.questions for o in q["options"] if o["correct"]}
    assert "GROUP BY" not in correct


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"in": value}
    return value


@pytest.mark.parametrize("provenance", [
    {"topics": {"sql"}}, {"raw": b"{}"}, {"score": float("nan")}, {1: object()},
    _nested(5000),
], ids=["set", "bytes", "nan", "object-under-int-key", "nested-5000-deep"])
def test_provenance_of_any_shape_does_not_keep_a_quiz_generating(
        world: World, quizzes: QuizCommands, provenance: dict[str, Any]) -> None:
    quiz_id = _generate(world.store, quizzes, Generator([_question("Fine?")], provenance))
    assert world.store.load(Quiz, quiz_id).status in ("draft", "failed")


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail the test if the block runs longer than `seconds` (interrupting it), and
    restore the alarm pytest-timeout may have set before."""
    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expired)
    before, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except TimeoutError:
        # Without its traceback: one interrupted anywhere can't always be formatted.
        pytest.fail(f"still running after {seconds} s", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, before)
        signal.signal(signal.SIGALRM, previous)


def test_a_huge_generator_output_is_rejected_at_once(
        world: World, quizzes: QuizCommands) -> None:
    questions = [_question(f"Question {i} on join number {i * 7919 % 100_003}?")
                 for i in range(600)]
    with time_limit(0.3):
        quiz_id = _generate(world.store, quizzes, Generator(questions))
    failed = recorded(world.store, quiz_id, Quiz.GenerationFailed)
    assert "expected 1 questions, got 600" in failed.reason
    assert len(failed.reason) <= 2000


# -- payments --------------------------------------------------------------------------------

def _paid(world: World, gateway: Gateway) -> tuple[Actor, PaymentCommands, UUID]:
    ada = world.student("Ada")
    payments = PaymentCommands(world.store, gateway, {"DP": 100, "FSD": 200}, "eur")
    started = payments.create_intent(ada)
    intent = world.store.load(Payment, started.id).intent_id
    payments.record_provider_event("evt_1", "payment_intent.succeeded",
                                   {"id": intent, "amount_received": 100, "currency": "eur"})
    return ada, payments, started.id


def test_a_payment_opens_the_track_once_and_is_announced_with_its_amount(
        world: World) -> None:
    ada, payments, payment = _paid(world, Gateway())
    policies = PaymentPolicies(payments, world.store, world.chat).policies()
    succeeded = recorded(world.store, payment, Payment.Succeeded)
    handle(policies, "payment_grants_access", succeeded)
    handle(policies, "payment_grants_access", succeeded)  # redelivered
    handle(policies, "payment_chat", succeeded)
    enrolment = Student.id_for(ada.id)
    assert world.store.load(Student, enrolment).paid_by == payment
    assert event_names(world.store, enrolment).count("AccessGranted") == 1
    assert world.chat.posts == [
        ":moneybag: Payment received: 1.00 EUR from Ada for the Data Professional track"]


def test_an_approved_refund_is_asked_of_the_provider_once_and_the_refund_shuts_access(
        world: World) -> None:
    gateway = Gateway()
    ada, payments, payment = _paid(world, gateway)
    policies = PaymentPolicies(payments, world.store, world.chat).policies()
    handle(policies, "payment_grants_access", recorded(world.store, payment,
                                                       Payment.Succeeded))
    payments.request_refund(ada, payment, "changed my mind")
    payments.decide_refund(world.admin(), payment, True, "within 14 days")
    approved = recorded(world.store, payment, Payment.RefundApproved)
    handle(policies, "refund_at_provider", approved)
    handle(policies, "refund_at_provider", approved)  # redelivered
    assert gateway.refunds == [(world.store.load(Payment, payment).intent_id,
                                f"refund-{payment}")]
    assert event_names(world.store, payment).count("RefundSubmitted") == 1
    payments.record_provider_event("evt_2", "charge.refunded", {
        "payment_intent": world.store.load(Payment, payment).intent_id,
        "amount_refunded": 100})
    handle(policies, "refund_revokes_access", recorded(world.store, payment,
                                                       Payment.Refunded))
    assert world.store.load(Student, Student.id_for(ada.id)).paid_by is None


# -- GitHub ----------------------------------------------------------------------------------

def test_a_started_project_gets_one_repository_from_its_template_even_if_redelivered(
        world: World) -> None:
    ada = world.student("Ada")
    account = world.account(ada)
    account.link_github("ada-gh", actor_id=ada.id)
    world.store.commit(account)
    host, vault = Host(), Vault()
    vault.store(ada.id, "ada-gh", "gho_token")
    _curriculum(world).start_project(ada, TEMPLATED)
    github = GitHubCommands(world.store, host, vault, world.one_time, Signer(), "client",
                            "https://github.example", URL)
    started = recorded(world.store, Progress.id_for(ada.id, "DP"), Progress.ProjectStarted)
    policies = GitHubPolicies(github).policies()
    handle(policies, "repository_from_template", started)
    handle(policies, "repository_from_template", started)
    assert host.created[0] == ("gho_token", TEMPLATE, "ada-gh", TEMPLATED)
    repository = world.store.load(Repository, Repository.id_for(f"ada-gh/{TEMPLATED}"))
    assert (repository.student_id, repository.project) == (ada.id, TEMPLATED)
    assert len(event_names(world.store, repository.id)) == 1  # not recorded twice


def test_a_project_started_without_a_linked_account_asks_nothing_of_the_host(
        world: World) -> None:
    ada = world.student("Ada")
    _curriculum(world).start_project(ada, TEMPLATED)
    host = Host()
    github = GitHubCommands(world.store, host, Vault(), world.one_time, Signer(), "client",
                            "https://github.example", URL)
    handle(GitHubPolicies(github).policies(), "repository_from_template",
           recorded(world.store, Progress.id_for(ada.id, "DP"), Progress.ProjectStarted))
    assert host.created == []


# -- workspaces ------------------------------------------------------------------------------

def test_a_launch_request_starts_one_container_and_a_stop_request_stops_it(
        world: World) -> None:
    ada = world.student("Ada")
    engine = Engine()
    workspaces = WorkspaceCommands(world.store, engine, Passwords(), Clock(), POLICY,
                                   PaidAccess(world.store, False))
    policies = WorkspacePolicies(workspaces).policies()
    workspace = Workspace.id_for(ada.id)
    workspaces.launch(ada)
    launch = recorded(world.store, workspace, Workspace.LaunchRequested)
    handle(policies, "workspace_provision", launch)
    handle(policies, "workspace_provision", launch)  # redelivered
    assert [s.image for s in engine.specs] == ["superset"]
    assert world.store.load(Workspace, workspace).state == "running"
    workspaces.stop(ada, ada.id, "user")
    stop = recorded(world.store, workspace, Workspace.StopRequested)
    handle(policies, "workspace_stop", stop)
    handle(policies, "workspace_stop", stop)  # redelivered
    assert engine.stopped == [f"apranova-ws-{ada.id}"]
    assert world.store.load(Workspace, workspace).state == "stopped"
