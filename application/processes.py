"""Process-manager policies: an event comes in, ports are called, commands may go out.

Each policy is registered under a stable name with the event classes it reacts to;
the relay enqueues one message per (policy, event) and a worker runs the policy.
Delivery is at-least-once, so every policy must tolerate seeing an event twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from application.auth import (
    PASSWORD_RESET,
    PASSWORD_RESET_TTL,
    VERIFY_EMAIL,
    VERIFY_EMAIL_TTL,
    AuthCommands,
)
from application.eventstore import EventStore
from application.github import GitHubCommands
from application.payments import PaymentCommands
from application.ports import (
    ChatNotifier,
    Email,
    GenerationError,
    Mailer,
    OneTimeTokens,
    QuizGenerator,
    QuizRequest,
)
from application.quizzes import QuizCommands
from application.workspaces import WorkspaceCommands
from domain.accounts import Account, ResetRequests
from domain.payments import Payment
from domain.progress import Progress
from domain.quizzes import Quiz
from domain.roles import Track
from domain.students import Student
from domain.submissions import Submission
from domain.workspaces import Workspace

TRACK_NAMES = {
    Track.DATA_PROFESSIONAL: "Data Professional",
    Track.FULL_STACK: "Full-Stack Development",
}


@dataclass(frozen=True)
class Policy:
    name: str
    events: tuple[type, ...]
    handle: Callable[[Any], object]
    # How long one run may take before the worker stops it (and it is retried).
    time_limit_seconds: float = 120.0

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(get_topic(cls) for cls in self.events)


class MailPolicies:
    """Emails that follow from account events."""

    def __init__(
        self, store: EventStore, mailer: Mailer, one_time: OneTimeTokens, public_url: str
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.one_time = one_time
        self.public_url = public_url.rstrip("/")

    def policies(self) -> list[Policy]:
        return [
            Policy("welcome_email", (Student.Enrolled,), self.welcome),
            Policy("verification_email", (Account.Registered,), self.verification),
            Policy("registration_attempt_email", (Account.RegistrationAttempted,),
                   self.registration_attempt),
            Policy("password_reset_email", (Account.PasswordResetRequested,), self.password_reset),
        ]

    def _addressee(self, account_id: UUID) -> Account | None:
        """Whom to mail: nobody once erased (the address is gone; the work is not
        retried, there is nothing to send)."""
        account = self.store.load(Account, account_id, "User")
        return None if account.erased else account

    def welcome(self, event: Student.Enrolled) -> None:
        if (account := self._addressee(event.account_id)) is None:
            return
        track = TRACK_NAMES[Track(event.track)]
        self.mailer.send(Email(
            to=account.email,
            subject="Welcome to ApraNova",
            body=(
                f"Hello {account.name},\n\n"
                f"Welcome to the {track} track. Your ten projects, quizzes and personal "
                f"workspace are waiting for you at {self.public_url}.\n\n— The ApraNova team\n"
            ),
        ))

    def verification(self, event: Account.Registered) -> None:
        account = self._addressee(event.originator_id)
        if account is None or account.email_verified:
            return
        key = self.one_time.issue(account.id, VERIFY_EMAIL, VERIFY_EMAIL_TTL)
        self.mailer.send(Email(
            to=account.email,
            subject="Confirm your email address",
            body=(
                f"Hello {account.name},\n\nConfirm your email address by opening\n"
                f"{self.public_url}/api/auth/verify-email/{key}/\n\n"
                f"The link is valid for {VERIFY_EMAIL_TTL // 3600} hours.\n"
            ),
        ))

    def registration_attempt(self, event: Account.RegistrationAttempted) -> None:
        if (account := self._addressee(event.originator_id)) is None:
            return
        self.mailer.send(Email(
            to=account.email,
            subject="Someone tried to register with your email address",
            body=(
                f"Hello {account.name},\n\nSomeone tried to create an ApraNova account with "
                "this address, which already has one. If it was you, log in instead; if you "
                f"forgot your password, reset it at {self.public_url}.\n"
                "If it was not you, you need do nothing: your account is unchanged.\n"
            ),
        ))

    def password_reset(self, event: Account.PasswordResetRequested) -> None:
        account = self._addressee(event.originator_id)
        if account is None or not account.active:
            return
        key = self.one_time.issue(account.id, PASSWORD_RESET, PASSWORD_RESET_TTL)
        self.mailer.send(Email(
            to=account.email,
            subject="Reset your ApraNova password",
            body=(
                f"Hello {account.name},\n\nSomeone asked to reset your password. If it was "
                f"you, send this key with your new password to "
                f"{self.public_url}/api/auth/password/reset/confirm/ :\n\n{key}\n\n"
                f"It is valid for {PASSWORD_RESET_TTL // 60} minutes. If it wasn't you, "
                f"ignore this email.\n"
            ),
        ))


class SubmissionPolicies:
    """Tell trainers about new submissions and students about reviews (Slack and email)."""

    def __init__(
        self, store: EventStore, mailer: Mailer, chat: ChatNotifier, public_url: str
    ) -> None:
        self.store = store
        self.mailer = mailer
        self.chat = chat
        self.public_url = public_url.rstrip("/")

    def policies(self) -> list[Policy]:
        return [
            Policy("submission_chat", (Submission.Submitted,), self.submitted_chat),
            Policy("submission_trainer_email", (Submission.Submitted,), self.submitted_email),
            Policy("review_chat", (Submission.Approved, Submission.ChangesRequested),
                   self.reviewed_chat),
            Policy("review_student_email", (Submission.Approved, Submission.ChangesRequested),
                   self.reviewed_email),
        ]

    def _context(self, event: Any) -> tuple[Submission, Account]:
        submission = self.store.load(Submission, event.originator_id, "Submission")
        return submission, self.store.load(Account, submission.student_id, "User")

    def submitted_chat(self, event: Submission.Submitted) -> None:
        submission, student = self._context(event)
        self.chat.post(f":inbox_tray: {student.name} submitted {submission.project} "
                       f"(round {event.round}) for review")

    def submitted_email(self, event: Submission.Submitted) -> None:
        submission, student = self._context(event)
        enrolment = self.store.find(Student, Student.id_for(student.id))
        if enrolment is None or enrolment.trainer_id is None:
            return
        trainer = self.store.load(Account, enrolment.trainer_id, "Trainer")
        self.mailer.send(Email(
            to=trainer.email,
            subject=f"New submission: {submission.project} by {student.name}",
            body=(f"Hello {trainer.name},\n\n{student.name} submitted {submission.project} "
                  f"(round {event.round}). It is in your review queue at "
                  f"{self.public_url}/api/curriculum/review-queue/\n"),
        ))

    def reviewed_chat(self, event: Submission.Approved | Submission.ChangesRequested) -> None:
        submission, student = self._context(event)
        verdict = ("approved" if isinstance(event, Submission.Approved)
                   else "needs changes")
        self.chat.post(f":memo: {submission.project} by {student.name} {verdict}")

    def reviewed_email(self, event: Submission.Approved | Submission.ChangesRequested) -> None:
        submission, student = self._context(event)
        approved = isinstance(event, Submission.Approved)
        verdict = "approved" if approved else "returned with requested changes"
        self.mailer.send(Email(
            to=student.email,
            subject=f"Your submission for {submission.project} was {verdict}",
            body=(f"Hello {student.name},\n\nYour submission for {submission.project} was "
                  f"{verdict}.\n\nFeedback:\n{event.feedback or '(none)'}\n\n"
                  + ("The next project is now unlocked.\n" if approved else
                     "Update it and submit again when ready.\n")),
        ))


class QuizPolicies:
    """Generate the questions of a requested quiz and record the outcome, either way."""

    def __init__(self, quizzes: QuizCommands, generator: QuizGenerator) -> None:
        self.quizzes = quizzes
        self.generator = generator

    def policies(self) -> list[Policy]:
        # A generator may ask Gemini up to three times, each answer taking a while.
        return [Policy("quiz_generation", (Quiz.Requested,), self.generate,
                       time_limit_seconds=600.0)]

    def generate(self, event: Quiz.Requested) -> None:
        request = QuizRequest(event.originator_id, event.title, event.prompt,
                              event.generation_type, event.num_questions, event.track)
        try:
            result = self.generator.generate(request)
        except GenerationError as error:
            self.quizzes.complete_generation(request.quiz_id, None, error.reason,
                                             error.provenance)
            return
        except Exception as error:  # a failed generation is recorded, never left hanging
            self.quizzes.complete_generation(
                request.quiz_id, None, f"generator error: {error!r}",
                {"generator": type(self.generator).__name__})
            return
        self.quizzes.complete_generation(request.quiz_id, result, None, result.provenance)


class PaymentPolicies:
    """What follows a payment: access to the track, refunds at the provider, a Slack note."""

    def __init__(self, payments: PaymentCommands, store: EventStore, chat: ChatNotifier) -> None:
        self.payments = payments
        self.store = store
        self.chat = chat

    def policies(self) -> list[Policy]:
        return [
            Policy("payment_grants_access", (Payment.Succeeded,),
                   lambda e: self.payments.grant_access(e.originator_id)),
            Policy("refund_revokes_access", (Payment.Refunded,),
                   lambda e: self.payments.revoke_access(e.originator_id)),
            Policy("refund_at_provider", (Payment.RefundApproved,),
                   lambda e: self.payments.submit_refund(e.originator_id)),
            Policy("payment_chat", (Payment.Succeeded,), self.announce),
        ]

    def announce(self, event: Payment.Succeeded) -> None:
        payment = self.store.load(Payment, event.originator_id, "Payment")
        student = self.store.load(Account, payment.student_id, "User")
        self.chat.post(f":moneybag: Payment received: {event.amount_received / 100:.2f} "
                       f"{event.currency.upper()} from {student.name} for the "
                       f"{TRACK_NAMES[Track(payment.track)]} track")


class AuthPolicies:
    def __init__(self, auth: AuthCommands) -> None:
        self.auth = auth

    def policies(self) -> list[Policy]:
        return [Policy("password_reset_request", (ResetRequests.Asked,),
                       self.auth.pass_on_reset)]


class GitHubPolicies:
    def __init__(self, github: GitHubCommands) -> None:
        self.github = github

    def policies(self) -> list[Policy]:
        return [Policy("repository_from_template", (Progress.ProjectStarted,),
                       self.github.create_repository)]


class WorkspacePolicies:
    def __init__(self, workspaces: WorkspaceCommands) -> None:
        self.workspaces = workspaces

    def policies(self) -> list[Policy]:
        return [
            # Pulling an image and waiting for the workspace to answer take minutes.
            Policy("workspace_provision", (Workspace.LaunchRequested,),
                   lambda e: self.workspaces.provision(e.originator_id),
                   time_limit_seconds=900.0),
            Policy("workspace_stop", (Workspace.StopRequested,),
                   lambda e: self.workspaces.halt(e.originator_id)),
            Policy("workspace_erase", (Account.Erased,),
                   lambda e: self.workspaces.discard(e.originator_id)),
        ]
