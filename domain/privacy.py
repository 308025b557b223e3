"""Whose personal data each event holds: the one declaration the log's encryption, export
and erasure read.

Every text field of every event is either personal (a name, an email, a login or a
provider's subject, free text a person wrote or that was written about their record, an
uploaded file's name, a URL naming their account) or not; a test fails on an event type
whose text fields are not all listed here.

Whose data is it: a personal field belongs to the person whose record the event is in
(`SUBJECT`), whoever wrote it. A trainer's feedback on a submission, an administrator's
reason for changing a role, a student's own note: each is kept under the key of the
person the record is about, so erasing that person erases it, while the author stays in
the record as an id (and their own erasure turns their name, not their reviews of others,
into the marker). A stream of no one's (quizzes, the curriculum, capacities) holds no
personal field.
"""

from __future__ import annotations

from collections.abc import Mapping
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.accounts import Account, EmailClaim, IdentityClaim, ResetRequests, SuperadminChanges
from domain.curriculum import Curriculum
from domain.payments import Payment
from domain.progress import Progress
from domain.quizzes import Attempt, Quiz
from domain.repositories import Repository
from domain.students import Student
from domain.submissions import Submission
from domain.trainers import TrainerCapacity
from domain.workspaces import Workspace

# What every reader sees in place of a personal field once its person is erased.
ERASED = "[erased]"

# Fields that hold a person's id: the analysts' stream and exports show other people by
# pseudonym there.
PERSON_ID_FIELDS = frozenset({
    "actor_id", "student_id", "owner_id", "trainer_id", "account_id", "previous_trainer_id",
    "student_account_id",
})

# Of each stream, the attribute (on the aggregate) and the field (of its first event) that
# names the person it is about; "id" is the stream itself. Reset requests are per email,
# whether or not an account has it, so they are their own subject.
SUBJECT: Mapping[type[Aggregate], str] = {
    Account: "id",
    EmailClaim: "account_id",
    IdentityClaim: "account_id",
    ResetRequests: "id",
    Student: "account_id",
    Progress: "account_id",
    Submission: "student_id",
    Payment: "student_id",
    Repository: "student_id",
    Workspace: "student_id",
    Attempt: "student_id",
}

PERSONAL: Mapping[type, frozenset[str]] = {
    Account.Registered: frozenset({"email", "name"}),
    Account.ProfileUpdated: frozenset({"name"}),
    Account.RoleChanged: frozenset({"reason"}),
    Account.Deactivated: frozenset({"reason"}),
    Account.Reactivated: frozenset({"reason"}),
    Account.GitHubLinked: frozenset({"login"}),
    Account.IdentityLinked: frozenset({"subject"}),
    Account.IdentityUnlinked: frozenset({"subject"}),
    IdentityClaim.Claimed: frozenset({"subject"}),
    EmailClaim.Claimed: frozenset({"email"}),
    EmailClaim.Reclaimed: frozenset({"email"}),
    ResetRequests.Opened: frozenset({"email"}),
    Student.TrackChanged: frozenset({"reason"}),
    Student.TrainerUnassigned: frozenset({"reason"}),
    Student.AccessRevoked: frozenset({"reason"}),
    Payment.RefundRequested: frozenset({"reason"}),
    Payment.RefundApproved: frozenset({"reason"}),
    Payment.RefundRejected: frozenset({"reason"}),
    Repository.Linked: frozenset({"full_name", "url"}),
    Submission.DeliverableSet: frozenset({"value"}),
    Submission.FileAttached: frozenset({"filename"}),
    Submission.Submitted: frozenset({"note"}),
    Submission.Approved: frozenset({"feedback"}),
    Submission.ChangesRequested: frozenset({"feedback"}),
    Submission.PullRequestRecorded: frozenset({"url"}),
}

# Text fields that name no one: codes, ids of third parties, what a provider or engine
# said, and the content of quizzes and the curriculum. An erasure's reason is here on
# purpose: it must stay readable after the key is gone, so it must not name anyone.
IMPERSONAL: Mapping[type, frozenset[str]] = {
    Account.Registered: frozenset({"role"}),
    Account.RoleChanged: frozenset({"old_role", "new_role"}),
    Account.PasswordChanged: frozenset({"via"}),
    Account.IdentityLinked: frozenset({"provider", "issuer"}),
    Account.IdentityUnlinked: frozenset({"provider", "issuer"}),
    Account.Erased: frozenset({"reason"}),
    IdentityClaim.Claimed: frozenset({"issuer"}),
    Curriculum.VersionPublished: frozenset({"content_hash", "content", "note"}),
    Payment.Initiated: frozenset({"track", "currency", "intent_id"}),
    Payment.Succeeded: frozenset({"provider_event_id", "currency"}),
    Payment.AmountMismatched: frozenset({"provider_event_id", "currency"}),
    Payment.Failed: frozenset({"provider_event_id", "reason"}),
    Payment.Refunded: frozenset({"provider_event_id"}),
    Payment.RefundSubmitted: frozenset({"refund_id"}),
    Progress.Opened: frozenset({"track"}),
    Progress.ProjectStarted: frozenset({"project"}),
    Progress.StepCompleted: frozenset({"project"}),
    Progress.StepUncompleted: frozenset({"project"}),
    Progress.ProjectApproved: frozenset({"project"}),
    Quiz.Requested: frozenset({"title", "prompt", "generation_type", "track"}),
    Quiz.Generated: frozenset({"questions", "provenance"}),
    Quiz.GenerationFailed: frozenset({"reason", "provenance"}),
    Quiz.Edited: frozenset({"title", "questions", "settings", "reason"}),
    Quiz.Archived: frozenset({"reason"}),
    Attempt.Started: frozenset({"question_order", "option_order"}),
    Attempt.AnswerSaved: frozenset({"question_id", "option_ids"}),
    Attempt.Submitted: frozenset({"per_question"}),
    Attempt.Regraded: frozenset({"per_question", "reason"}),
    Repository.Linked: frozenset({"project", "track"}),
    Student.Enrolled: frozenset({"track"}),
    Student.TrackChanged: frozenset({"old_track", "new_track"}),
    Submission.Drafted: frozenset({"project", "track"}),
    Submission.DeliverableSet: frozenset({"key", "kind"}),
    Submission.FileAttached: frozenset({"key", "sha256", "content_type"}),
    Submission.Approved: frozenset({"rubric"}),
    Submission.ChangesRequested: frozenset({"rubric"}),
    Submission.PullRequestRecorded: frozenset({"delivery_id", "action", "head_sha"}),
    Workspace.Opened: frozenset({"container_name", "volume"}),
    Workspace.LaunchRequested: frozenset({"track", "image"}),
    Workspace.Started: frozenset({"container_id"}),
    Workspace.StopRequested: frozenset({"reason"}),
    Workspace.Stopped: frozenset({"reason"}),
    Workspace.Failed: frozenset({"reason", "detail"}),
}

STREAMS_OF_NO_ONE = (Quiz, Curriculum, TrainerCapacity, SuperadminChanges)


def personal_fields(event_class: type) -> frozenset[str]:
    return PERSONAL.get(event_class, frozenset())


def subject_of(aggregate: Aggregate) -> UUID | None:
    """The person a stream is about, from its current state (None: no one's, or no one's
    any more, like a released email claim)."""
    attribute = SUBJECT.get(type(aggregate))
    value = getattr(aggregate, attribute, None) if attribute else None
    return value if isinstance(value, UUID) else None


def subject_in(event_state: Mapping[str, object], aggregate_class: type[Aggregate] | None
               ) -> UUID | None:
    """The person a stream is about, from the state of an event that names them (its
    first event always does)."""
    attribute = SUBJECT.get(aggregate_class) if aggregate_class else None
    if attribute is None:
        return None
    value = event_state.get("originator_id" if attribute == "id" else attribute)
    return value if isinstance(value, UUID) else None


def stream_class(event_class: type) -> type[Aggregate] | None:
    """The aggregate class an event class belongs to (`Account` for `Account.Registered`)."""
    owner = event_class.__qualname__.rpartition(".")[0]
    return next((cls for cls in SUBJECT if cls.__qualname__ == owner
                 and cls.__module__ == event_class.__module__), None)
