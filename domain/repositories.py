"""A student's GitHub repository for a project: found again by its full name."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.ids import derived_id


class Repository(Aggregate):
    class Linked(Aggregate.Created):
        full_name: str
        url: str
        student_id: UUID
        project: str
        track: str

    @staticmethod
    def id_for(full_name: str) -> UUID:
        return derived_id("repository", full_name.lower())

    @classmethod
    def create_id(cls, full_name: str) -> UUID:
        return cls.id_for(full_name)

    @event(Linked)
    def __init__(self, full_name: str, url: str, student_id: UUID, project: str,
                 track: str) -> None:
        self.full_name = full_name
        self.url = url
        self.student_id = student_id
        self.project = project
        self.track = track
