"""The Account aggregate (identity, role, status) and the email claim that keeps emails unique.

Credentials never appear here: password hashes and tokens live in the credentials store.
"""

from __future__ import annotations

from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, Invalid, NotFound
from domain.ids import derived_id
from domain.roles import Role

MAX_NAME_LENGTH = 150
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 128


def normalise_email(email: str) -> str:
    return email.strip().lower()


def check_password_policy(password: str, email: str) -> None:
    """Length bounds (the upper one keeps hashing cheap to refuse) and not the email itself."""
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise Invalid(
            f"Password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            code="WEAK_PASSWORD",
        )
    if password.strip().lower() == normalise_email(email):
        raise Invalid("Password must not be the email address", code="WEAK_PASSWORD")


class Account(Aggregate):
    """A person who can log in. `actor_id` on every event says who caused it."""

    class Registered(Aggregate.Created):
        email: str
        name: str
        role: str
        actor_id: UUID | None

    class ProfileUpdated(Aggregate.Event):
        name: str
        actor_id: UUID

    class RoleChanged(Aggregate.Event):
        old_role: str
        new_role: str
        actor_id: UUID
        reason: str

    class EmailVerified(Aggregate.Event):
        actor_id: UUID | None

    class PasswordResetRequested(Aggregate.Event):
        actor_id: UUID | None

    class PasswordChanged(Aggregate.Event):
        actor_id: UUID | None
        via: str

    class Deactivated(Aggregate.Event):
        actor_id: UUID
        reason: str

    class Reactivated(Aggregate.Event):
        actor_id: UUID
        reason: str

    class RegistrationAttempted(Aggregate.Event):
        """Someone tried to register with this account's email; its owner is told."""

        actor_id: UUID | None

    class GitHubLinked(Aggregate.Event):
        login: str
        actor_id: UUID

    class IdentityLinked(Aggregate.Event):
        """A provider's identity (issuer and subject, never the email alone) signs in to
        this account. The provider's tokens never enter an event."""

        provider: str
        issuer: str
        subject: str
        actor_id: UUID

    class IdentityUnlinked(Aggregate.Event):
        provider: str
        issuer: str
        subject: str
        actor_id: UUID

    class TwoFactorEnrolled(Aggregate.Event):
        """Sign-in now asks for a time-based code; the secret is kept outside the log."""

        actor_id: UUID

    class TwoFactorDisabled(Aggregate.Event):
        actor_id: UUID

    class RecoveryCodeUsed(Aggregate.Event):
        actor_id: UUID
        remaining: int

    class Erased(Aggregate.Event):
        """The person's key is destroyed: every personal field of theirs in the log now
        reads as erased. This event holds no personal data, and neither may its reason."""

        actor_id: UUID
        reason: str

    @event(Registered)
    def __init__(self, id: UUID, email: str, name: str, role: str, actor_id: UUID | None) -> None:
        self.email = email
        self.name = name
        self.role = Role(role)
        self.active = True
        self.email_verified = False
        self.github_login: str | None = None
        self.identities: dict[str, tuple[str, str]] = {}  # provider -> (issuer, subject)
        self.two_factor = False
        self.erased = False

    @property
    def is_active(self) -> bool:
        return self.active

    def _require_active(self) -> None:
        if not self.active:
            raise Conflict("The account is deactivated", code="ACCOUNT_INACTIVE")

    def update_profile(self, name: str, actor_id: UUID) -> None:
        self._require_active()
        if name != self.name:
            self._profile_updated(name=name, actor_id=actor_id)

    @event(ProfileUpdated)
    def _profile_updated(self, name: str, actor_id: UUID) -> None:
        self.name = name

    def change_role(self, role: Role, actor_id: UUID, reason: str) -> None:
        self._require_active()
        if role != self.role:
            self._role_changed(old_role=self.role.value, new_role=role.value,
                               actor_id=actor_id, reason=reason)

    @event(RoleChanged)
    def _role_changed(self, old_role: str, new_role: str, actor_id: UUID, reason: str) -> None:
        self.role = Role(new_role)

    def verify_email(self, actor_id: UUID | None) -> None:
        if not self.email_verified:
            self._email_verified(actor_id=actor_id)

    @event(EmailVerified)
    def _email_verified(self, actor_id: UUID | None) -> None:
        self.email_verified = True

    @event(PasswordResetRequested)
    def request_password_reset(self, actor_id: UUID | None) -> None:
        """Recorded so the mail process manager sends a reset link; the token is not in it."""

    @event(PasswordChanged)
    def password_changed(self, actor_id: UUID | None, via: str) -> None:
        """A marker only: the hash itself is stored in the credentials store."""

    def deactivate(self, actor_id: UUID, reason: str) -> None:
        if self.active:
            self._deactivated(actor_id=actor_id, reason=reason)

    @event(Deactivated)
    def _deactivated(self, actor_id: UUID, reason: str) -> None:
        self.active = False

    def reactivate(self, actor_id: UUID, reason: str) -> None:
        if self.erased:
            raise Conflict("An erased account cannot be reactivated", code="ACCOUNT_ERASED")
        if not self.active:
            self._reactivated(actor_id=actor_id, reason=reason)

    @event(Reactivated)
    def _reactivated(self, actor_id: UUID, reason: str) -> None:
        self.active = True


    def registration_attempted(self) -> None:
        self._registration_attempted(actor_id=None)

    @event(RegistrationAttempted)
    def _registration_attempted(self, actor_id: UUID | None) -> None:
        pass

    def link_github(self, login: str, actor_id: UUID) -> None:
        """The token itself goes to the credentials store, never into an event."""
        if login != self.github_login:
            self._github_linked(login=login, actor_id=actor_id)

    @event(GitHubLinked)
    def _github_linked(self, login: str, actor_id: UUID) -> None:
        self.github_login = login


    def link_identity(self, provider: str, issuer: str, subject: str, actor_id: UUID) -> None:
        self._require_active()
        current = self.identities.get(provider)
        if current == (issuer, subject):
            return
        if current is not None:
            raise Conflict(f"Another {provider} identity is linked to this account",
                           code="IDENTITY_ALREADY_LINKED")
        self._identity_linked(provider=provider, issuer=issuer, subject=subject,
                              actor_id=actor_id)

    @event(IdentityLinked)
    def _identity_linked(self, provider: str, issuer: str, subject: str, actor_id: UUID
                         ) -> None:
        self.identities[provider] = (issuer, subject)

    def unlink_identity(self, provider: str, actor_id: UUID) -> tuple[str, str]:
        if provider not in self.identities:
            raise NotFound(f"No {provider} identity is linked", code="IDENTITY_NOT_LINKED")
        issuer, subject = self.identities[provider]
        self._identity_unlinked(provider=provider, issuer=issuer, subject=subject,
                                actor_id=actor_id)
        return issuer, subject

    @event(IdentityUnlinked)
    def _identity_unlinked(self, provider: str, issuer: str, subject: str, actor_id: UUID
                           ) -> None:
        del self.identities[provider]


    def enrol_two_factor(self, actor_id: UUID) -> None:
        self._require_active()
        if self.two_factor:
            raise Conflict("Two-factor sign-in is already on", code="MFA_ALREADY_ENABLED")
        self._two_factor_enrolled(actor_id=actor_id)

    @event(TwoFactorEnrolled)
    def _two_factor_enrolled(self, actor_id: UUID) -> None:
        self.two_factor = True

    def disable_two_factor(self, actor_id: UUID) -> None:
        if not self.two_factor:
            raise Conflict("Two-factor sign-in is not on", code="MFA_NOT_ENABLED")
        self._two_factor_disabled(actor_id=actor_id)

    @event(TwoFactorDisabled)
    def _two_factor_disabled(self, actor_id: UUID) -> None:
        self.two_factor = False

    @event(RecoveryCodeUsed)
    def recovery_code_used(self, actor_id: UUID, remaining: int) -> None:
        pass

    def erase(self, actor_id: UUID, reason: str) -> None:
        if actor_id == self.id:
            raise Conflict("Nobody erases their own account", code="CANNOT_ERASE_SELF")
        if not self.erased:
            self._erased(actor_id=actor_id, reason=reason)

    @event(Erased)
    def _erased(self, actor_id: UUID, reason: str) -> None:
        self.erased = True
        self.active = False


class IdentityClaim(Aggregate):
    """One per provider identity (issuer, subject): its deterministic id makes two
    accounts claiming one identity collide, and it says which account signs in with it."""

    class Claimed(Aggregate.Created):
        issuer: str
        subject: str
        account_id: UUID

    class Reassigned(Aggregate.Event):
        account_id: UUID | None

    @staticmethod
    def id_for(issuer: str, subject: str) -> UUID:
        return derived_id("identity", f"{issuer} {subject}")

    @classmethod
    def create_id(cls, issuer: str, subject: str) -> UUID:
        return cls.id_for(issuer, subject)

    @event(Claimed)
    def __init__(self, issuer: str, subject: str, account_id: UUID) -> None:
        self.account_id: UUID | None = account_id

    def claim(self, account_id: UUID) -> None:
        if self.account_id not in (None, account_id):
            raise Conflict("This identity signs in to another account",
                           code="IDENTITY_TAKEN")
        if self.account_id is None:
            self._reassigned(account_id=account_id)

    def release(self) -> None:
        if self.account_id is not None:
            self._reassigned(account_id=None)

    @event(Reassigned)
    def _reassigned(self, account_id: UUID | None) -> None:
        self.account_id = account_id


class EmailClaim(Aggregate):
    """One per normalised email; its deterministic id makes duplicate registrations collide.
    An erased account releases its email, and a new registration may claim it again."""

    class Claimed(Aggregate.Created):
        email: str
        account_id: UUID

    class Released(Aggregate.Event):
        actor_id: UUID

    class Reclaimed(Aggregate.Event):
        email: str
        account_id: UUID

    @staticmethod
    def id_for(email: str) -> UUID:
        return derived_id("email", normalise_email(email))

    @classmethod
    def create_id(cls, email: str) -> UUID:
        return cls.id_for(email)

    @event(Claimed)
    def __init__(self, email: str, account_id: UUID) -> None:
        self.account_id: UUID | None = account_id

    def release(self, actor_id: UUID) -> None:
        if self.account_id is not None:
            self._released(actor_id=actor_id)

    @event(Released)
    def _released(self, actor_id: UUID) -> None:
        self.account_id = None

    def reclaim(self, email: str, account_id: UUID) -> None:
        if self.account_id is not None:
            raise Conflict("This email is already registered", code="EMAIL_TAKEN")
        self._reclaimed(email=email, account_id=account_id)

    @event(Reclaimed)
    def _reclaimed(self, email: str, account_id: UUID) -> None:
        self.account_id = account_id


def claim_email(claim: EmailClaim | None, email: str, account_id: UUID) -> EmailClaim:
    """The claim of `email` for a new account: a new one, or a released one taken again."""
    if claim is None:
        return EmailClaim(email=email, account_id=account_id)
    claim.reclaim(email, account_id)
    return claim


class ResetRequests(Aggregate):
    """Requests to reset the password of one email address, whether or not an account has
    it. Asking records the same event either way, so the request's work and timing say
    nothing about who has an account; the process manager finds the account afterwards
    (AuthCommands.pass_on_reset)."""

    class Opened(Aggregate.Created):
        """`generation` counts the streams of one email: a stream whose email was erased
        (with its person) cannot carry requests any more, so the next one opens."""

        email: str
        generation: int
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, object]) -> None:
            state["generation"] = 0

    class Asked(Aggregate.Event):
        pass

    @staticmethod
    def id_for(email: str, generation: int = 0) -> UUID:
        key = normalise_email(email)
        return derived_id("password-reset", key if generation == 0 else f"{key}#{generation}")

    @classmethod
    def create_id(cls, email: str, generation: int = 0) -> UUID:
        return cls.id_for(email, generation)

    @event(Opened)
    def __init__(self, email: str, generation: int = 0) -> None:
        self.email = email
        self.generation = generation

    def ask(self) -> None:
        self._asked()

    @event(Asked)
    def _asked(self) -> None:
        pass


class SuperadminChanges(Aggregate):
    """Every change that takes a superadmin away (deactivation, another role), one after
    another: two such commands at once conflict here, and the retry finds whether its
    actor is still an active superadmin. Since an actor never removes themselves, some
    superadmin always remains: two superadmins switching each other off at the same
    moment cannot leave none."""

    class Opened(Aggregate.Created):
        pass

    class Removed(Aggregate.Event):
        account_id: UUID
        actor_id: UUID

    ID: ClassVar[UUID] = derived_id("superadmin-changes", "all")

    @classmethod
    def create_id(cls) -> UUID:
        return cls.ID

    @event(Opened)
    def __init__(self) -> None:
        pass

    def removed(self, account_id: UUID, actor_id: UUID) -> None:
        self._removed(account_id=account_id, actor_id=actor_id)

    @event(Removed)
    def _removed(self, account_id: UUID, actor_id: UUID) -> None:
        pass
