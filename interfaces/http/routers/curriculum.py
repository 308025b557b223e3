"""/api/curriculum/: catalog, progress, submissions and reviews."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, File, Path, Query, Request, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, StringConstraints

from application.authorization import (
    REVIEW_QUEUE_READERS,
    authors,
    follows_a_track,
    may_see_learner,
    oversees,
    trainer_scope,
)
from domain.errors import Forbidden, NotFound
from domain.progress import unlocked
from domain.roles import Track
from domain.submissions import MAX_FEEDBACK, MAX_TEXT
from interfaces.http.consistency import Settling, answer_after
from interfaces.http.dependencies import (
    CatalogDep,
    CurriculumCommandsDep,
    FileStoreDep,
    Principal,
    PrincipalDep,
    ProgressDep,
    SubmissionsDep,
    UsersDep,
    read_position,
)
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router
from interfaces.http.schemas import Body
from projections.base import ReadModel
from projections.catalog import CatalogView
from projections.progress import ProgressView
from projections.submissions import SubmissionsView

router = Router(prefix="/api/curriculum", tags=["curriculum"])

Position = Annotated[int | None, Depends(read_position)]
Pages = Annotated[PageParams, Depends(page_params)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,80}$")]
SlugPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{2,80}$")]
KeyPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
DELIVERABLE_KEY = r"^[a-z][a-z0-9_]{0,40}$"
DeliverableKey = Annotated[str, StringConstraints(pattern=DELIVERABLE_KEY)]
DeliverableValue = Annotated[str, StringConstraints(max_length=MAX_TEXT)]


class TrackOut(BaseModel):
    code: str
    name: str
    description: str
    duration_weeks: int
    project_count: int
    version: int


class StepOut(BaseModel):
    number: int
    title: str
    description: str


class DeliverableOut(BaseModel):
    key: str
    title: str
    type: str
    required: bool
    description: str


class ProjectOut(BaseModel):
    id: str
    track: str
    number: int
    title: str
    description: str
    type: str
    estimated_hours: int
    tech_stack: list[str]
    github_template_repo: str
    version: int
    steps: list[StepOut]
    deliverables: list[DeliverableOut]


class TrackDetailOut(TrackOut):
    projects: list[ProjectOut]


class StartIn(Body):
    project_id: Slug
    action: Literal["start"]


class StepIn(Body):
    project_id: Slug
    action: Literal["complete_step", "uncomplete_step"]
    step: int = Field(ge=1, le=1000)


# Which fields a progress command needs follows from its action; the schema says so.
ProgressIn = Annotated[StartIn | StepIn, Field(discriminator="action")]


class ProjectProgressOut(BaseModel):
    project_id: str
    number: int
    title: str
    type: str
    status: str
    curriculum_version: int | None
    steps_total: int
    completed_steps: list[int]
    submission_id: UUID | None
    repository_url: str | None
    started_at: datetime | None
    approved_at: datetime | None


class MyProgressOut(BaseModel):
    track: str
    projects: list[ProjectProgressOut]
    approved_projects: int
    percent_complete: float


class SubmissionIn(Body):
    project_id: Slug
    deliverables: dict[DeliverableKey, DeliverableValue] = Field(
        default_factory=dict, max_length=20,
        json_schema_extra={"propertyNames": {"pattern": DELIVERABLE_KEY}})
    submit: bool = False
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class SubmissionUpdateIn(Body):
    deliverables: dict[DeliverableKey, DeliverableValue] = Field(
        default_factory=dict, max_length=20,
        json_schema_extra={"propertyNames": {"pattern": DELIVERABLE_KEY}})
    submit: bool = False
    note: Annotated[str, StringConstraints(max_length=2000)] = ""


class ReviewIn(Body):
    decision: Literal["start_review", "approve", "request_changes"]
    feedback: Annotated[str, StringConstraints(max_length=MAX_FEEDBACK)] = ""
    rubric: dict[Annotated[str, StringConstraints(min_length=1, max_length=60)],
                 Annotated[int, Field(ge=0, le=5)]] = Field(default_factory=dict, max_length=20)


class HistoryOut(BaseModel):
    version: int
    at: datetime
    event: str
    actor_id: UUID | None
    status: str
    detail: dict[str, Any]


class SubmissionOut(BaseModel):
    id: UUID
    student_id: UUID
    student_name: str
    trainer_id: UUID | None
    project_id: str
    track: str
    curriculum_version: int
    status: str
    round: int
    deliverables: dict[str, Any]
    pull_requests: dict[str, Any] = {}
    feedback: str | None
    rubric: dict[str, int] | None
    reviewed_by: UUID | None
    created_at: datetime
    submitted_at: datetime | None
    updated_at: datetime
    history: list[HistoryOut] | None = None
    waiting_seconds: float | None = None


def _project(row: dict[str, Any]) -> ProjectOut:
    return ProjectOut(id=row["slug"], version=row["version"], **{
        k: row[k] for k in ("track", "number", "title", "description", "type",
                            "estimated_hours", "tech_stack", "github_template_repo",
                            "steps", "deliverables")})


def _wait(view: ReadModel, position: int | None) -> None:
    view.catch_up(position)


# -- catalog ---------------------------------------------------------------------------------

@router.get("/tracks/", response_model=list[TrackOut])
def tracks(p: PrincipalDep, catalog: CatalogDep) -> list[TrackOut]:
    return [TrackOut(**r) for r in catalog.tracks()]


@router.get("/tracks/{code}/", response_model=TrackDetailOut)
def track(code: Track, p: PrincipalDep, catalog: CatalogDep) -> TrackDetailOut:
    row = catalog.track(code.value)
    if row is None:
        raise NotFound("Track not found")
    _, projects = catalog.projects(track=code.value, limit=100)
    return TrackDetailOut(**row, projects=[_project(r) for r in projects])


@router.get("/projects/", response_model=Page[ProjectOut])
def projects(request: Request, p: PrincipalDep, catalog: CatalogDep, pages: Pages,
             track: Track | None = None) -> dict[str, Any]:
    count, rows = catalog.projects(track=track.value if track else None,
                                   offset=pages.offset, limit=pages.page_size)
    return paginate(request, pages, count, [_project(r) for r in rows])


def _catalog_project(catalog: CatalogView, slug: str) -> ProjectOut:
    row = catalog.project(slug)
    if row is None:
        raise NotFound("Project not found")
    return _project(row)


@router.get("/projects/{project_id}/", response_model=ProjectOut)
def project(project_id: SlugPath, p: PrincipalDep, catalog: CatalogDep) -> ProjectOut:
    return _catalog_project(catalog, project_id)


@router.get("/projects/{project_id}/steps/", response_model=list[StepOut])
def project_steps(project_id: SlugPath, p: PrincipalDep, catalog: CatalogDep
                  ) -> list[StepOut]:
    return _catalog_project(catalog, project_id).steps


# -- progress --------------------------------------------------------------------------------

def _my_progress(progress: ProgressView, catalog: CatalogView, p: Principal) -> MyProgressOut:
    user, progress_rows = progress.on_track(p.id)
    if user is None or not follows_a_track(user["role"]) or not user["track"]:
        raise Forbidden("Only students follow a track", code="NOT_A_STUDENT")
    track_code = user["track"]
    rows = {r["project"]: r for r in progress_rows}
    _, entries = catalog.projects(track=track_code, limit=100)
    approved_numbers = {r["number"] for r in rows.values() if r["status"] == "approved"}
    out = []
    for entry in entries:
        row = rows.get(entry["slug"])
        pinned = (catalog.project(entry["slug"], row["curriculum_version"])
                  if row else None) or entry
        is_open = unlocked(entry["number"], approved_numbers)
        out.append(ProjectProgressOut(
            project_id=entry["slug"], number=entry["number"], title=pinned["title"],
            type=pinned["type"],
            status=row["status"] if row else ("available" if is_open else "locked"),
            curriculum_version=row["curriculum_version"] if row else None,
            steps_total=len(pinned["steps"]),
            completed_steps=sorted(row["completed_steps"]) if row else [],
            submission_id=row["submission_id"] if row else None,
            repository_url=row["repository_url"] if row else None,
            started_at=row["started_at"] if row else None,
            approved_at=row["approved_at"] if row else None,
        ))
    done = len(approved_numbers)
    return MyProgressOut(track=track_code, projects=out, approved_projects=done,
                         percent_complete=round(100 * done / len(out), 1) if out else 0.0)


@router.get("/progress/me/", response_model=MyProgressOut)
def my_progress(p: PrincipalDep, progress: ProgressDep, users: UsersDep, catalog: CatalogDep,
                position: Position) -> MyProgressOut:
    for model in (progress, users):  # progress on the student's current track
        _wait(model, position)
    return _my_progress(progress, catalog, p)


@router.post("/progress/", response_model=MyProgressOut)
def update_progress(body: ProgressIn, p: PrincipalDep, curriculum: CurriculumCommandsDep,
                    progress: ProgressDep, catalog: CatalogDep) -> Settling:
    if isinstance(body, StartIn):
        position = curriculum.start_project(p.actor, body.project_id)
    else:
        position = curriculum.set_step(p.actor, body.project_id, body.step,
                                       body.action == "complete_step")
    return answer_after(progress, position, lambda: _my_progress(progress, catalog, p))



# -- submissions -----------------------------------------------------------------------------

def _visible_submission(submissions: SubmissionsView, p: Principal, submission_id: UUID,
                        with_history: bool = True) -> SubmissionOut:
    row = submissions.get(submission_id)
    if row is None or not may_see_learner(p.actor, row["student_id"], row["trainer_id"]):
        raise NotFound("Submission not found")
    history = [HistoryOut(**h) for h in submissions.history(submission_id)]
    return _submission(row, history if with_history else None)


def _submission(row: dict[str, Any], history: list[HistoryOut] | None = None
                ) -> SubmissionOut:
    return SubmissionOut(project_id=row["project"], history=history, **{
        k: v for k, v in row.items() if k != "project"})


@router.post("/submissions/", status_code=status.HTTP_201_CREATED, response_model=SubmissionOut)
def create_submission(body: SubmissionIn, p: PrincipalDep, curriculum: CurriculumCommandsDep,
                      submissions: SubmissionsDep) -> Settling:
    created = curriculum.create_submission(p.actor, body.project_id, body.deliverables,
                                           body.submit, body.note)
    return answer_after(submissions, created.position,
                        lambda: _visible_submission(submissions, p, created.id),
                        status.HTTP_201_CREATED)


@router.get("/submissions/", response_model=Page[SubmissionOut])
def list_submissions(
    request: Request, p: PrincipalDep, submissions: SubmissionsDep, pages: Pages,
    position: Position,
    status_filter: Annotated[
        Literal["draft", "submitted", "under_review", "approved", "changes_requested"] | None,
        Query(alias="status")] = None,
    project_id: Annotated[str | None, Query(max_length=80)] = None,
    student_id: UUID | None = None,
) -> dict[str, Any]:
    _wait(submissions, position)
    trainer_id = trainer_scope(p.actor)
    if trainer_id is None and not oversees(p.role):
        student_id = p.id  # students see their own, whatever they ask for
    count, rows = submissions.page(offset=pages.offset, limit=pages.page_size,
                                   student_id=student_id, trainer_id=trainer_id,
                                   status=status_filter, project=project_id)
    return paginate(request, pages, count, [_submission(r) for r in rows])


@router.get("/submissions/{submission_id}/", response_model=SubmissionOut)
def get_submission(submission_id: UUID, p: PrincipalDep, submissions: SubmissionsDep,
                   position: Position) -> SubmissionOut:
    _wait(submissions, position)
    return _visible_submission(submissions, p, submission_id)


@router.put("/submissions/{submission_id}/", response_model=SubmissionOut)
def update_submission(submission_id: UUID, body: SubmissionUpdateIn, p: PrincipalDep,
                      curriculum: CurriculumCommandsDep, submissions: SubmissionsDep
                      ) -> Settling:
    position = curriculum.update_submission(p.actor, submission_id, body.deliverables,
                                            body.submit, body.note)
    return answer_after(submissions, position,
                        lambda: _visible_submission(submissions, p, submission_id))


@router.post("/submissions/{submission_id}/deliverables/{key}/file/",
             response_model=SubmissionOut)
def upload_file(submission_id: UUID, key: KeyPath, p: PrincipalDep,
                curriculum: CurriculumCommandsDep, submissions: SubmissionsDep,
                file: Annotated[UploadFile, File()]) -> Settling:
    chunks = iter(lambda: file.file.read(64 * 1024), b"")
    position = curriculum.attach_file(p.actor, submission_id, key, file.filename or "",
                                      chunks)
    return answer_after(submissions, position,
                        lambda: _visible_submission(submissions, p, submission_id))


@router.get("/submissions/{submission_id}/deliverables/{key}/file/",
            response_class=FileResponse)
def download_file(submission_id: UUID, key: KeyPath, p: PrincipalDep,
                  submissions: SubmissionsDep, files: FileStoreDep,
                  position: Position) -> FileResponse:
    _wait(submissions, position)
    submission = _visible_submission(submissions, p, submission_id, with_history=False)
    entry = submission.deliverables.get(key)
    path = files.path(entry["sha256"]) if entry and entry.get("type") == "FILE" else None
    if path is None:
        raise NotFound("No file for that deliverable")
    return FileResponse(path, media_type=entry["content_type"] if entry else None,
                        filename=entry["filename"] if entry else None)


@router.post("/submissions/{submission_id}/review/", response_model=SubmissionOut)
def review(submission_id: UUID, body: ReviewIn, p: PrincipalDep,
           curriculum: CurriculumCommandsDep, submissions: SubmissionsDep) -> Settling:
    if not authors(p.role):
        raise Forbidden("Only trainers and administrators review", code="PERMISSION_DENIED")
    position = curriculum.review(p.actor, submission_id, body.decision, body.feedback,
                                 body.rubric)
    return answer_after(submissions, position,
                        lambda: _visible_submission(submissions, p, submission_id))


@router.get("/review-queue/", response_model=Page[SubmissionOut])
def review_queue(request: Request, p: PrincipalDep, submissions: SubmissionsDep, pages: Pages,
                 position: Position) -> dict[str, Any]:
    """Waiting submissions, oldest first: a trainer's own students, or everyone's for staff."""
    if p.role not in REVIEW_QUEUE_READERS:
        raise Forbidden("Only trainers and administrators have a review queue",
                        code="PERMISSION_DENIED")
    _wait(submissions, position)
    count, rows = submissions.queue(
        trainer_id=trainer_scope(p.actor),
        offset=pages.offset, limit=pages.page_size)
    return paginate(request, pages, count, [_submission(r) for r in rows])
