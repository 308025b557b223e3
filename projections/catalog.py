"""The catalog read model: every published curriculum version, tracks and projects."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow

from domain.curriculum import Content, Curriculum
from projections.base import Handler, ReadModel, ReadModelProjection, Statement

T = TypeVar("T")
# How many query results of published versions a process keeps (a version's projects by
# track and page, and single projects): a few per track and version in practice.
KEPT_RESULTS = 512

PROJECT_COLUMNS = (
    "version, slug, track, number, title, description, type, estimated_hours, tech_stack, "
    "github_template_repo, steps, deliverables"
)


class CatalogView(ReadModel):
    topics = (get_topic(Curriculum.VersionPublished),)
    tables = ("rm_catalog_versions", "rm_catalog_tracks", "rm_catalog_projects")
    ddl = """
CREATE TABLE IF NOT EXISTS rm_catalog_versions (
    version integer PRIMARY KEY,
    published_at timestamptz NOT NULL,
    note text NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_catalog_tracks (
    version integer NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    description text NOT NULL,
    duration_weeks integer NOT NULL,
    project_count integer NOT NULL,
    PRIMARY KEY (version, code)
);
CREATE TABLE IF NOT EXISTS rm_catalog_projects (
    version integer NOT NULL,
    slug text NOT NULL,
    track text NOT NULL,
    number integer NOT NULL,
    title text NOT NULL,
    description text NOT NULL,
    type text NOT NULL,
    estimated_hours integer NOT NULL,
    tech_stack jsonb NOT NULL,
    github_template_repo text NOT NULL,
    steps jsonb NOT NULL,
    deliverables jsonb NOT NULL,
    PRIMARY KEY (version, slug)
);
CREATE INDEX IF NOT EXISTS rm_catalog_projects_track ON rm_catalog_projects (version, track, number)
"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept: dict[tuple[Any, ...], Any] = {}

    def _kept_or(self, key: tuple[Any, ...], read: Callable[[], T],
                 found: Callable[[T], bool]) -> T:
        """A published version's rows are only ever inserted, all in the transaction
        that publishes it, and never change: what a query of one found can be kept (and
        shared: callers must not change it). Only "which version is the latest" has to
        be asked each time. Saved on `progress/me`: its largest query and the jsonb it
        decoded, on every read."""
        kept = self._kept.get(key)
        if kept is not None:
            return kept
        result = read()
        if found(result):  # nothing found may be a version not yet applied
            if len(self._kept) >= KEPT_RESULTS:
                self._kept.clear()
            self._kept[key] = result
        return result

    def latest_version(self) -> int | None:
        row = self.fetch_one("SELECT max(version) AS v FROM rm_catalog_versions")
        return int(row["v"]) if row and row["v"] is not None else None

    def _version(self, version: int | None) -> int:
        return version if version is not None else (self.latest_version() or 0)

    def tracks(self, version: int | None = None) -> list[DictRow]:
        return self.fetch_all(
            "SELECT version, code, name, description, duration_weeks, project_count "
            "FROM rm_catalog_tracks WHERE version = %s ORDER BY code",
            (self._version(version),))

    def track(self, code: str, version: int | None = None) -> DictRow | None:
        return self.fetch_one(
            "SELECT version, code, name, description, duration_weeks, project_count "
            "FROM rm_catalog_tracks WHERE version = %s AND code = %s",
            (self._version(version), code))

    def projects(self, *, track: str | None = None, version: int | None = None,
                 offset: int = 0, limit: int = 100) -> tuple[int, list[DictRow]]:
        v = self._version(version)
        return self._kept_or(("projects", v, track, offset, limit), lambda: self.page_of(
            "rm_catalog_projects", PROJECT_COLUMNS,
            "version = %(v)s AND (%(t)s::text IS NULL OR track = %(t)s)",
            {"v": v, "t": track}, "track, number", offset, limit), lambda r: r[0] > 0)

    def project(self, slug: str, version: int | None = None) -> DictRow | None:
        v = self._version(version)
        return self._kept_or(("project", v, slug), lambda: self.fetch_one(
            f"SELECT {PROJECT_COLUMNS} FROM rm_catalog_projects WHERE version = %s AND slug = %s",
            (v, slug)), lambda r: r is not None)


class CatalogProjection(ReadModelProjection):
    name = "catalog"
    view_class = CatalogView

    def handlers(self) -> dict[type, Handler]:
        return {Curriculum.VersionPublished: self.published}

    @staticmethod
    def published(e: Curriculum.VersionPublished) -> Iterable[Statement]:
        content = Content.parse(e.content)
        yield ("INSERT INTO rm_catalog_versions VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
               (e.number, e.timestamp, e.note))
        for t in content.tracks:
            yield ("INSERT INTO rm_catalog_tracks VALUES (%s, %s, %s, %s, %s, %s) "
                   "ON CONFLICT DO NOTHING",
                   (e.number, t.code, t.name, t.description, t.duration_weeks,
                    len(t.projects)))
            for p in t.projects:
                yield (
                    f"INSERT INTO rm_catalog_projects ({PROJECT_COLUMNS}) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    (e.number, p.slug, p.track, p.number, p.title, p.description, p.type,
                     p.estimated_hours, json.dumps(list(p.tech_stack)),
                     p.github_template_repo,
                     json.dumps([vars(s) for s in p.steps]),
                     json.dumps([vars(d) for d in p.deliverables])),
                )
