"""Progress (the unlock rule) and Submission (the review cycle), given/when/then."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.curriculum import Content, Deliverable, Project, Step
from domain.errors import Conflict, Invalid, NotFound
from domain.progress import Progress
from domain.submissions import Submission


def project(number: int, *deliverables: Deliverable) -> Project:
    return Project(
        slug=f"dp-{number:02d}-x", track="DP", number=number, title=f"P{number}",
        description="", type="INTERNAL", estimated_hours=10, tech_stack=("SQL",),
        github_template_repo="", steps=(Step(1, "a", ""), Step(2, "b", "")),
        deliverables=deliverables or (
            Deliverable("repository", "Repo", "GITHUB", True, ""),
            Deliverable("notes", "Notes", "TEXT", False, ""),
            Deliverable("report", "Report", "FILE", False, "")),
    )


STUDENT, TRAINER = uuid4(), uuid4()


def started(*projects: Project) -> Progress:
    progress = Progress(account_id=STUDENT, track="DP")
    for p in projects:
        progress.start(p, 1, actor_id=STUDENT)
    progress.collect_events()
    return progress


def test_project_two_is_locked_until_project_one_is_approved() -> None:
    p1, p2 = project(1), project(2)
    progress = started(p1)
    with pytest.raises(Conflict) as error:
        progress.start(p2, 1, actor_id=STUDENT)
    assert error.value.code == "PROJECT_LOCKED"
    progress.approve(p1.slug, uuid4(), actor_id=TRAINER)
    progress.start(p2, 1, actor_id=STUDENT)
    assert [type(e) for e in progress.collect_events()] == [
        Progress.ProjectApproved, Progress.ProjectStarted]


def test_steps_complete_and_uncomplete_once_each() -> None:
    p1 = project(1)
    progress = started(p1)
    progress.set_step(p1, 1, True, actor_id=STUDENT)
    progress.set_step(p1, 1, True, actor_id=STUDENT)
    progress.set_step(p1, 1, False, actor_id=STUDENT)
    progress.set_step(p1, 1, False, actor_id=STUDENT)
    assert [type(e) for e in progress.collect_events()] == [
        Progress.StepCompleted, Progress.StepUncompleted]
    with pytest.raises(Invalid):
        progress.set_step(p1, 3, True, actor_id=STUDENT)


def test_approved_projects_are_closed_and_other_tracks_refused() -> None:
    p1 = project(1)
    progress = started(p1)
    progress.approve(p1.slug, uuid4(), actor_id=TRAINER)
    with pytest.raises(Conflict):
        progress.set_step(p1, 1, True, actor_id=STUDENT)
    other = Project(**{**vars(project(1)), "track": "FSD", "slug": "fsd-01-x"})
    with pytest.raises(Invalid):
        progress.start(other, 1, actor_id=STUDENT)


def new_submission(p: Project) -> Submission:
    submission = Submission(student_id=STUDENT, project=p.slug, track="DP",
                            curriculum_version=1, actor_id=STUDENT)
    submission.collect_events()
    return submission


def test_review_cycle_with_rounds() -> None:
    p = project(1)
    s = new_submission(p)
    with pytest.raises(Invalid) as missing:
        s.submit(p, "", actor_id=STUDENT)
    assert missing.value.details["missing"] == ["repository"]
    s.set_deliverable(p, "repository", "https://github.com/ada/repo", actor_id=STUDENT)
    s.submit(p, "first", actor_id=STUDENT)
    s.start_review(actor_id=TRAINER)
    s.request_changes("more tests", {"tests": 2}, actor_id=TRAINER)
    s.submit(p, "second", actor_id=STUDENT)
    s.approve("good", {"tests": 5}, actor_id=TRAINER)
    events = s.collect_events()
    assert [type(e).__name__ for e in events] == [
        "DeliverableSet", "Submitted", "ReviewStarted", "ChangesRequested", "Submitted",
        "Approved"]
    assert [e.round for e in events if isinstance(e, Submission.Submitted)] == [1, 2]
    assert s.status == "approved"


@pytest.mark.parametrize("action", ["approve", "request_changes", "start_review"])
def test_a_draft_cannot_be_reviewed(action: str) -> None:
    s = new_submission(project(1))
    with pytest.raises(Conflict) as error:
        if action == "start_review":
            s.start_review(actor_id=TRAINER)
        else:
            getattr(s, action)("x", {}, actor_id=TRAINER)
    assert error.value.code == "INVALID_TRANSITION"


def test_nobody_reviews_their_own_work_and_rubrics_are_bounded() -> None:
    p = project(1)
    s = new_submission(p)
    s.set_deliverable(p, "repository", "https://github.com/ada/repo", actor_id=STUDENT)
    s.submit(p, "", actor_id=STUDENT)
    with pytest.raises(Conflict) as error:
        s.approve("self", {}, actor_id=STUDENT)
    assert error.value.code == "CANNOT_REVIEW_OWN"
    with pytest.raises(Invalid):
        s.approve("x", {"tests": 9}, actor_id=TRAINER)


def test_deliverable_kinds() -> None:
    p = project(1)
    s = new_submission(p)
    with pytest.raises(Invalid):
        s.set_deliverable(p, "repository", "https://example.com/ada/repo", actor_id=STUDENT)
    with pytest.raises(Invalid) as file_error:
        s.set_deliverable(p, "report", "report.pdf", actor_id=STUDENT)
    assert file_error.value.code == "FILE_DELIVERABLE_NEEDS_UPLOAD"
    with pytest.raises(NotFound):
        s.set_deliverable(p, "nope", "x", actor_id=STUDENT)
    with pytest.raises(Invalid):
        s.attach_file(p, "notes", "0" * 64, 1, "text/plain", "n.txt", actor_id=STUDENT)
    s.attach_file(p, "report", "0" * 64, 10, "application/pdf", "r.pdf", actor_id=STUDENT)
    assert s.deliverables["report"]["sha256"] == "0" * 64


def test_the_shipped_curriculum_parses_and_bad_content_is_refused() -> None:
    import tomllib

    from infrastructure.settings import CONTENT

    with (CONTENT / "curriculum.toml").open("rb") as f:
        content = Content.parse(tomllib.load(f))
    assert [len(t.projects) for t in content.tracks] == [10, 10]
    for broken in ({}, {"tracks": [{"code": "DP", "name": "x", "projects": [{"slug": "BAD"}]}]}):
        with pytest.raises(Invalid):
            Content.parse(broken)
