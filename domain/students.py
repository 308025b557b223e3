"""The Student aggregate: a student account's track and trainer."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import derived_id
from domain.roles import Track


class Student(Aggregate):
    class Enrolled(Aggregate.Created):
        account_id: UUID
        track: str
        actor_id: UUID | None

    class TrackChanged(Aggregate.Event):
        old_track: str
        new_track: str
        actor_id: UUID
        reason: str

    class TrainerAssigned(Aggregate.Event):
        trainer_id: UUID
        previous_trainer_id: UUID | None
        actor_id: UUID

    class TrainerUnassigned(Aggregate.Event):
        previous_trainer_id: UUID
        actor_id: UUID
        reason: str

    class AccessGranted(Aggregate.Event):
        payment_id: UUID

    class AccessRevoked(Aggregate.Event):
        payment_id: UUID
        reason: str

    @staticmethod
    def id_for(account_id: UUID) -> UUID:
        return derived_id("student", account_id)

    @classmethod
    def create_id(cls, account_id: UUID) -> UUID:
        return cls.id_for(account_id)

    @event(Enrolled)
    def __init__(self, account_id: UUID, track: str, actor_id: UUID | None) -> None:
        self.account_id = account_id
        self.track = Track(track)
        self.trainer_id: UUID | None = None
        self.paid_by: UUID | None = None
        self.revoked: set[UUID] = set()

    def change_track(self, track: Track, actor_id: UUID, reason: str) -> None:
        if track != self.track:
            self._track_changed(old_track=self.track.value, new_track=track.value,
                                actor_id=actor_id, reason=reason)

    @event(TrackChanged)
    def _track_changed(self, old_track: str, new_track: str, actor_id: UUID, reason: str) -> None:
        self.track = Track(new_track)

    @event(TrainerAssigned)
    def assign_trainer(
        self, trainer_id: UUID, previous_trainer_id: UUID | None, actor_id: UUID
    ) -> None:
        self.trainer_id = trainer_id

    def unassign_trainer(self, actor_id: UUID, reason: str) -> None:
        if self.trainer_id is not None:
            self._trainer_unassigned(previous_trainer_id=self.trainer_id,
                                     actor_id=actor_id, reason=reason)

    @event(TrainerUnassigned)
    def _trainer_unassigned(self, previous_trainer_id: UUID, actor_id: UUID, reason: str) -> None:
        self.trainer_id = None

    def grant_access(self, payment_id: UUID) -> None:
        # A payment revoked already (its refund overtook its success) grants nothing.
        if self.paid_by is None and payment_id not in self.revoked:
            self._access_granted(payment_id=payment_id)

    @event(AccessGranted)
    def _access_granted(self, payment_id: UUID) -> None:
        self.paid_by = payment_id

    def revoke_access(self, payment_id: UUID, reason: str) -> None:
        """Recorded even before the grant arrives, so grant and revoke commute."""
        if payment_id not in self.revoked:
            self._access_revoked(payment_id=payment_id, reason=reason)

    @event(AccessRevoked)
    def _access_revoked(self, payment_id: UUID, reason: str) -> None:
        self.revoked.add(payment_id)
        if self.paid_by == payment_id:
            self.paid_by = None
