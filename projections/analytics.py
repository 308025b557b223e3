"""The analysts' read of the log: CloudEvents, pseudonymised, and xAPI statements.

Identities are replaced by keyed hashes (stable per person, not reversible without the
key), names and emails are dropped, and credentials never were in the log to begin with.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from application.audit import event_data
from application.eventstore import EventStore
from domain.privacy import PERSON_ID_FIELDS, personal_fields
from domain.quizzes import Attempt
from domain.registry import NAMES, event_classes

SOURCE = "urn:apranova"
EVENT_NAMESPACE = UUID("9d8f3a52-1c67-4f0e-8a4b-2f1f3c5d7e90")
PERSON_FIELDS = PERSON_ID_FIELDS
# Aggregates whose id says who someone is: an account's id is the person; an email
# claim's or a reset request's is derived from an email address, an identity claim's from
# a provider's subject, a repository's from a GitHub login.
PERSONAL_SUBJECTS = frozenset({"account", "email-claim", "password-reset-requests",
                               "identity-claim", "repository"})
XAPI_VERBS = {
    "attempted": "http://adlnet.gov/expapi/verbs/attempted",
    "completed": "http://adlnet.gov/expapi/verbs/completed",
    "scored": "http://adlnet.gov/expapi/verbs/scored",
}


def event_id(originator_id: UUID, version: int) -> UUID:
    """A stable id for an event, the same on every read and export."""
    return uuid5(EVENT_NAMESPACE, f"{originator_id}:{version}")


class Pseudonymiser:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def __call__(self, person: Any) -> str | None:
        if person is None:
            return None
        digest = hmac.new(self.key, str(person).encode(), hashlib.sha256).hexdigest()
        return f"p-{digest[:24]}"

    def data(self, data: dict[str, Any], personal: frozenset[str]) -> dict[str, Any]:
        """The event's data with people's ids pseudonymised, also where a value is made
        from one (a workspace's container is named after its student), and its personal
        fields (domain/privacy.py) left out: the stream never names anyone."""
        people = {str(v): str(self(v)) for k, v in data.items()
                  if k in PERSON_FIELDS and v is not None}

        def clean(value: Any) -> Any:
            if isinstance(value, str):
                for raw, pseudonym in people.items():
                    value = value.replace(raw, pseudonym)
                return value
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return {k: (self(v) if k in PERSON_FIELDS else clean(v))
                for k, v in data.items() if k not in personal}


def event_type(aggregate: str, event: Any) -> str:
    return f"apranova.{aggregate}.{type(event).__name__}"


def _aggregate_of(event: Any) -> str:
    owner = type(event).__qualname__.split(".")[0]
    return next((name for cls, name in NAMES.items() if cls.__name__ == owner), "unknown")


class EventStream:
    """Reads the log for analysts, by position."""

    def __init__(self, store: EventStore, pseudonymise: Pseudonymiser) -> None:
        self.store = store
        self.pseudonymise = pseudonymise

    def cloud_event(self, notification: Notification) -> dict[str, Any]:
        event: Any = self.store.mapper.to_domain_event(notification)
        aggregate = _aggregate_of(event)
        subject: Any = event.originator_id
        if aggregate in PERSONAL_SUBJECTS:
            subject = self.pseudonymise(subject)
        return {
            "specversion": "1.0",
            "id": str(event_id(event.originator_id, event.originator_version)),
            "source": f"{SOURCE}:{aggregate}",
            "type": event_type(aggregate, event),
            "time": event.timestamp.isoformat(),
            "subject": str(subject),
            "sequence": str(notification.id),
            "datacontenttype": "application/json",
            "data": self.pseudonymise.data(event_data(event), personal_fields(type(event))),
        }

    def page(self, after: int, limit: int, types: set[str] | None = None
             ) -> tuple[list[dict[str, Any]], int]:
        """CloudEvents after a position, and the position to continue after."""
        topics = _topics_for(types) if types else []
        if types and not topics:
            return [], after
        notifications = self.store.recorder.select_notifications(
            start=after + 1, limit=limit, topics=topics)
        events = [self.cloud_event(n) for n in notifications]
        return events, (notifications[-1].id if notifications else after)

    def xapi(self, after: int, limit: int, home_page: str) -> tuple[list[dict[str, Any]], int]:
        topics = [get_topic(Attempt.Started), get_topic(Attempt.Submitted),
                  get_topic(Attempt.Regraded)]
        notifications = self.store.recorder.select_notifications(
            start=after + 1, limit=limit, topics=topics)
        statements = []
        for n in notifications:
            event: Any = self.store.mapper.to_domain_event(n)
            attempt: Attempt = self.store.repository.get(event.originator_id,
                                                version=event.originator_version)
            statements.append(self._statement(event, attempt, home_page))
        return statements, (notifications[-1].id if notifications else after)

    def _statement(self, event: Any, attempt: Attempt, home_page: str) -> dict[str, Any]:
        verb = ("attempted" if isinstance(event, Attempt.Started)
                else "completed" if isinstance(event, Attempt.Submitted) else "scored")
        statement: dict[str, Any] = {
            "id": str(event_id(event.originator_id, event.originator_version)),
            "actor": {"objectType": "Agent", "account": {
                "homePage": home_page, "name": self.pseudonymise(attempt.student_id)}},
            "verb": {"id": XAPI_VERBS[verb], "display": {"en-US": verb}},
            "object": {"objectType": "Activity",
                       "id": f"{home_page}/api/quiz/quizzes/{attempt.quiz_id}/",
                       "definition": {"type": "http://adlnet.gov/expapi/activities/assessment"}},
            "context": {"registration": str(attempt.id),
                        "extensions": {f"{home_page}/xapi/attempt-number": attempt.number}},
            "timestamp": event.timestamp.isoformat(),
        }
        if not isinstance(event, Attempt.Started):
            statement["result"] = {
                "score": {"raw": event.score, "min": 0, "max": event.max_score,
                          "scaled": round(event.score / event.max_score, 4)
                          if event.max_score else 0},
                "completion": True,
            }
        return statement


def _topics_for(types: set[str]) -> list[str]:
    return [get_topic(cls) for aggregate, cls in event_classes()
            if f"apranova.{aggregate}.{cls.__name__}" in types]
