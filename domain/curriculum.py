"""Curriculum content (tracks, projects, steps, deliverables) and its versioned history.

The content is authored as a data file; each revision is recorded as a new version,
whole, in one event. Students who started a project keep the version they started on.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Invalid, NotFound
from domain.ids import derived_id

PROJECT_TYPES = ("INTERNAL", "CAPSTONE")
DELIVERABLE_TYPES = ("LINK", "GITHUB", "FILE", "TEXT")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{2,80}$")
KEY = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


@dataclass(frozen=True)
class Step:
    number: int
    title: str
    description: str


@dataclass(frozen=True)
class Deliverable:
    key: str
    title: str
    type: str
    required: bool
    description: str


@dataclass(frozen=True)
class Project:
    slug: str
    track: str
    number: int
    title: str
    description: str
    type: str
    estimated_hours: int
    tech_stack: tuple[str, ...]
    github_template_repo: str
    steps: tuple[Step, ...]
    deliverables: tuple[Deliverable, ...]
    # Whether merging the student's pull request approves the project by itself.
    approve_on_merge: bool = False

    def step_numbers(self) -> frozenset[int]:
        return frozenset(s.number for s in self.steps)

    def deliverable(self, key: str) -> Deliverable:
        for d in self.deliverables:
            if d.key == key:
                return d
        raise NotFound(f"Project {self.slug} has no deliverable '{key}'",
                       code="UNKNOWN_DELIVERABLE")


@dataclass(frozen=True)
class Track:
    code: str
    name: str
    description: str
    duration_weeks: int
    projects: tuple[Project, ...]


@dataclass(frozen=True)
class Content:
    """One version of the whole curriculum, validated."""

    tracks: tuple[Track, ...]

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Content:
        """Validate authored content; raise Invalid naming the first problem found."""
        try:
            return cls(tuple(_track(t) for t in data["tracks"]))._checked()
        except (KeyError, TypeError, ValueError) as error:
            raise Invalid(f"Curriculum content is malformed: {error!r}",
                          code="INVALID_CURRICULUM") from None

    def _checked(self) -> Content:
        slugs = [p.slug for t in self.tracks for p in t.projects]
        if len(set(slugs)) != len(slugs):
            raise Invalid("Project slugs must be unique", code="INVALID_CURRICULUM")
        if len({t.code for t in self.tracks}) != len(self.tracks):
            raise Invalid("Track codes must be unique", code="INVALID_CURRICULUM")
        for t in self.tracks:
            if [p.number for p in t.projects] != list(range(1, len(t.projects) + 1)):
                raise Invalid(f"Projects of {t.code} must be numbered 1..n",
                              code="INVALID_CURRICULUM")
            for p in t.projects:
                if [s.number for s in p.steps] != list(range(1, len(p.steps) + 1)):
                    raise Invalid(f"Steps of {p.slug} must be numbered 1..n",
                                  code="INVALID_CURRICULUM")
                keys = [d.key for d in p.deliverables]
                if len(set(keys)) != len(keys) or not keys:
                    raise Invalid(f"Deliverables of {p.slug} need unique keys",
                                  code="INVALID_CURRICULUM")
        return self

    def track(self, code: str) -> Track:
        for t in self.tracks:
            if t.code == code:
                return t
        raise NotFound(f"Track {code} not found")

    def project(self, slug: str) -> Project:
        for t in self.tracks:
            for p in t.projects:
                if p.slug == slug:
                    return p
        raise NotFound("Project not found")


def _track(t: dict[str, Any]) -> Track:
    code = str(t["code"])
    return Track(code=code, name=str(t["name"]), description=str(t.get("description", "")),
                 duration_weeks=int(t.get("duration_weeks", 12)),
                 projects=tuple(_project(code, p) for p in t["projects"]))


def _project(track: str, p: dict[str, Any]) -> Project:
    slug = str(p["slug"])
    if not SLUG.match(slug):
        raise ValueError(f"bad project slug {slug!r}")
    kind = str(p["type"])
    if kind not in PROJECT_TYPES:
        raise ValueError(f"bad project type {kind!r}")
    return Project(
        slug=slug, track=track, number=int(p["number"]), title=str(p["title"]),
        description=str(p.get("description", "")), type=kind,
        estimated_hours=int(p["estimated_hours"]),
        tech_stack=tuple(str(x) for x in p.get("tech_stack", ())),
        github_template_repo=str(p.get("github_template_repo", "")),
        steps=tuple(Step(int(s["number"]), str(s["title"]), str(s.get("description", "")))
                    for s in p["steps"]),
        deliverables=tuple(_deliverable(d) for d in p["deliverables"]),
        approve_on_merge=bool(p.get("approve_on_merge", False)),
    )


def _deliverable(d: dict[str, Any]) -> Deliverable:
    key, kind = str(d["key"]), str(d["type"])
    if not KEY.match(key) or kind not in DELIVERABLE_TYPES:
        raise ValueError(f"bad deliverable {key!r} of type {kind!r}")
    return Deliverable(key=key, title=str(d["title"]), type=kind,
                       required=bool(d.get("required", True)),
                       description=str(d.get("description", "")))


def content_hash(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


class Curriculum(Aggregate):
    """The single stream of curriculum versions."""

    class Started(Aggregate.Created):
        pass

    class VersionPublished(Aggregate.Event):
        number: int
        content_hash: str
        content: dict[str, Any]
        actor_id: UUID | None
        note: str

    ID = derived_id("curriculum", "main")

    @classmethod
    def create_id(cls) -> UUID:
        return cls.ID

    @event(Started)
    def __init__(self) -> None:
        # Not `version`: that is the aggregate's own event counter.
        self.latest = 0
        self.current_hash = ""
        self._contents: dict[int, dict[str, Any]] = {}
        self._parsed: dict[int, Content] = {}

    def publish(self, data: dict[str, Any], actor_id: UUID | None, note: str) -> bool:
        """Record `data` as the next version unless it equals the current one."""
        Content.parse(data)
        digest = content_hash(data)
        if digest == self.current_hash:
            return False
        self._published(number=self.latest + 1, content_hash=digest, content=data,
                        actor_id=actor_id, note=note)
        return True

    @event(VersionPublished)
    def _published(self, number: int, content_hash: str, content: dict[str, Any],
                   actor_id: UUID | None, note: str) -> None:
        self.latest = number
        self.current_hash = content_hash
        self._contents[number] = content

    def content(self, version: int | None = None) -> Content:
        number = self.latest if version is None else version
        if number not in self._contents:
            raise NotFound(f"Curriculum version {number} not found")
        if number not in self._parsed:
            self._parsed[number] = Content.parse(self._contents[number])
        return self._parsed[number]
