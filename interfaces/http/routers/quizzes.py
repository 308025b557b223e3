"""/api/quiz/: generation, authoring, attempts, results, statistics and regrading."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, Query, Request, Response, status
from psycopg.rows import DictRow
from pydantic import BaseModel, Field, StringConstraints

from application.authorization import authors_quiz, may_author_quizzes, trainer_scope
from domain.errors import NotFound
from domain.grading import GradingMethod, combine
from domain.quizzes import (
    MAX_OPTIONS,
    MAX_QUESTIONS,
    MAX_TEXT,
    SUBMITTED,
    Layout,
    ShowAnswers,
    answers_visible,
    seen_by,
)
from domain.roles import Track, is_staff
from interfaces.http.consistency import Settling, answer_after
from interfaces.http.dependencies import (
    AnswerCacheDep,
    AttemptsDep,
    Principal,
    PrincipalDep,
    QuizCommandsDep,
    QuizViewsDep,
    StudentQuizzesDep,
    UsersDep,
    read_position,
)
from interfaces.http.pagination import Page, PageParams, page_params, paginate
from interfaces.http.routing import Router
from interfaces.http.schemas import Body, Title
from projections.base import ReadModel
from projections.quizzes import AttemptsView, QuizzesView, StudentQuizzesView, public_questions

router = Router(prefix="/api/quiz", tags=["quizzes"])

Position = Annotated[int | None, Depends(read_position)]
Pages = Annotated[PageParams, Depends(page_params)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
ShortId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9]{1,20}$")]


class GenerateIn(Body):
    title: Title
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    generation_type: Literal["PROMPT", "WEB_SEARCH"] = "PROMPT"
    num_questions: int = Field(ge=1, le=MAX_QUESTIONS)
    track: Track | None = None


class OptionIn(Body):
    id: ShortId | None = None
    text: Text
    correct: bool


class QuestionIn(Body):
    id: ShortId | None = None
    text: Text
    type: Literal["SINGLE", "MULTIPLE"]
    explanation: Annotated[str, StringConstraints(max_length=MAX_TEXT)] = ""
    options: list[OptionIn] = Field(min_length=1, max_length=MAX_OPTIONS + 4)


class SettingsIn(Body):
    time_limit_seconds: int | None = Field(default=None, ge=30, le=86_400)
    attempts_allowed: int = Field(default=1, ge=1, le=20)
    grading_method: GradingMethod = GradingMethod.HIGHEST
    shuffle_questions: bool = False
    shuffle_options: bool = False
    partial_credit: bool = False
    show_answers: ShowAnswers = ShowAnswers.AFTER_LAST_ATTEMPT


class EditIn(Body):
    title: Title | None = None
    questions: list[QuestionIn] | None = Field(default=None, max_length=MAX_QUESTIONS + 10)
    settings: SettingsIn | None = None
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class AnswerIn(Body):
    question_id: ShortId
    option_ids: list[ShortId] = Field(max_length=MAX_OPTIONS)


class RegradeIn(Body):
    dry_run: bool = True
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class AcceptedQuizOut(BaseModel):
    id: UUID
    status: str


class QuizOut(BaseModel):
    """The authors' view, answer keys included."""

    id: UUID
    owner_id: UUID
    title: str
    prompt: str
    generation_type: str
    num_questions: int
    track: str | None
    status: str
    failure_reason: str | None
    questions: list[dict[str, Any]]
    settings: dict[str, Any]
    provenance: dict[str, Any] | None
    created_at: datetime
    published_at: datetime | None
    updated_at: datetime


class StudentQuizOut(BaseModel):
    """The takers' view: never any correct flag or explanation."""

    id: UUID
    title: str
    track: str | None
    settings: dict[str, Any]
    questions: list[dict[str, Any]]
    published_at: datetime


class QuizSummaryOut(BaseModel):
    id: UUID
    title: str
    track: str | None
    status: str
    question_count: int
    settings: dict[str, Any]
    published_at: datetime | None


class QuestionFeedback(BaseModel):
    question_id: str
    score: float
    chosen_option_ids: list[str]
    correct_option_ids: list[str]
    explanation: str


class AttemptOut(BaseModel):
    id: UUID
    quiz_id: UUID
    number: int
    status: str
    started_at: datetime
    deadline: datetime | None
    time_remaining_seconds: float | None
    submitted_at: datetime | None
    automatic: bool | None
    questions: list[dict[str, Any]]
    answers: dict[str, list[str]]
    score: float | None
    max_score: float | None
    percent: float | None
    answers_visible: bool
    feedback: list[QuestionFeedback] | None


class GradeOut(BaseModel):
    quiz_id: UUID
    grading_method: str
    attempts: list[dict[str, Any]]
    attempts_allowed: int
    grade: float | None


class QuestionStats(BaseModel):
    question_id: str
    text: str
    answered: int
    average_score: float | None
    difficulty: float | None


class StatisticsOut(BaseModel):
    quiz_id: UUID
    attempts: int
    students: int
    average_percent: float | None
    lowest_percent: float | None
    highest_percent: float | None
    questions: list[QuestionStats]


class RegradeChangeOut(BaseModel):
    attempt_id: UUID
    student_id: UUID
    previous_score: float
    new_score: float
    max_score: float


class RegradeOut(BaseModel):
    dry_run: bool
    changes: list[RegradeChangeOut]



def _authors(p: Principal, row: dict[str, Any] | None) -> bool:
    return row is not None and authors_quiz(p.actor, row["owner_id"])


def _authors_row(quiz_views: QuizzesView, p: Principal, quiz_id: UUID
                 ) -> dict[str, Any] | None:
    """The full quiz, for its owner and overseers only (no query for anyone else)."""
    row = quiz_views.get(quiz_id) if may_author_quizzes(p.role) else None
    return dict(row) if row is not None and _authors(p, row) else None


def _quiz_view(quiz_views: QuizzesView, student_quizzes: StudentQuizzesView, p: Principal,
               quiz_id: UUID) -> QuizOut | StudentQuizOut:
    row = _authors_row(quiz_views, p, quiz_id)
    if row is not None:
        return QuizOut(**row)
    public = student_quizzes.get(quiz_id)
    if public is None:
        raise NotFound("Quiz not found")
    return StudentQuizOut(**{**public, "questions": seen_by(
        public["questions"], public["settings"], quiz_id, p.id)})


# -- authoring -------------------------------------------------------------------------------

@router.post("/quizzes/generate/", status_code=status.HTTP_202_ACCEPTED,
             response_model=AcceptedQuizOut)
def generate(body: GenerateIn, p: PrincipalDep, quizzes: QuizCommandsDep,
             response: Response) -> AcceptedQuizOut:
    created = quizzes.request(p.actor, body.title, body.prompt, body.generation_type,
                                body.num_questions, body.track.value if body.track else None)
    response.headers["X-Position"] = str(created.position)
    response.headers["Location"] = f"/api/quiz/quizzes/{created.id}/"
    return AcceptedQuizOut(id=created.id, status="generating")


QuizPage = Page[QuizSummaryOut]


@router.get("/quizzes/", response_model=QuizPage)
def list_quizzes(request: Request, p: PrincipalDep, quiz_views: QuizViewsDep,
                 student_quizzes: StudentQuizzesDep, users: UsersDep, answers: AnswerCacheDep,
                 pages: Pages, position: Position,
                 status_filter: Annotated[Literal["generating", "draft", "failed", "published",
                                                  "archived"] | None,
                                          Query(alias="status")] = None) -> Response:
    """Authors see their own quizzes (overseers all); others the published ones. The
    answer is kept until a model it reads moves (projections/answers.py)."""
    views: tuple[ReadModel, ...]
    if may_author_quizzes(p.role):
        views, scope = (quiz_views,), ("authors", trainer_scope(p.actor))

        def page() -> tuple[int, list[DictRow], str | None]:
            count, rows = quiz_views.page(
                offset=pages.offset, limit=pages.page_size, status=status_filter,
                owner_id=trainer_scope(p.actor))
            return count, rows, None
    else:
        # The list follows the student's track, which the users model holds.
        views, scope = (student_quizzes, users), ("student", p.id)

        def page() -> tuple[int, list[DictRow], str | None]:
            count, rows = student_quizzes.page(offset=pages.offset, limit=pages.page_size,
                                               student_id=p.id)
            return count, rows, "published"

    for model in views:
        model.catch_up(position)

    def make() -> bytes:
        count, rows, status = page()
        results = [QuizSummaryOut(id=r["id"], title=r["title"], track=r["track"],
                                  status=status or r["status"],
                                  question_count=r["question_count"], settings=r["settings"],
                                  published_at=r["published_at"]) for r in rows]
        return QuizPage.model_validate(paginate(request, pages, count, results)
                                       ).model_dump_json().encode()

    body = answers.answer(views, (scope, str(request.url)), make)
    return Response(body, media_type="application/json")


@router.get("/quizzes/{quiz_id}/", response_model=QuizOut | StudentQuizOut)
def get_quiz(quiz_id: UUID, p: PrincipalDep, quiz_views: QuizViewsDep,
             student_quizzes: StudentQuizzesDep, position: Position
             ) -> QuizOut | StudentQuizOut:
    quiz_views.catch_up(position)
    student_quizzes.catch_up(position)
    return _quiz_view(quiz_views, student_quizzes, p, quiz_id)


def _authored_quiz(quiz_views: QuizzesView, p: Principal, quiz_id: UUID) -> QuizOut:
    row = _authors_row(quiz_views, p, quiz_id)
    if row is None:
        raise NotFound("Quiz not found")
    return QuizOut(**row)


@router.put("/quizzes/{quiz_id}/", response_model=QuizOut)
def edit_quiz(quiz_id: UUID, body: EditIn, p: PrincipalDep, quizzes: QuizCommandsDep,
              quiz_views: QuizViewsDep) -> Settling:
    position = quizzes.edit(
        p.actor, quiz_id, body.title,
        [q.model_dump() for q in body.questions] if body.questions is not None else None,
        body.settings.model_dump(mode="json", exclude_unset=True) if body.settings else None,
        body.reason)
    return answer_after(quiz_views, position, lambda: _authored_quiz(quiz_views, p, quiz_id))


@router.post("/quizzes/{quiz_id}/publish/", response_model=QuizOut)
def publish(quiz_id: UUID, p: PrincipalDep, quizzes: QuizCommandsDep,
            quiz_views: QuizViewsDep) -> Settling:
    position = quizzes.publish(p.actor, quiz_id)
    return answer_after(quiz_views, position, lambda: _authored_quiz(quiz_views, p, quiz_id))


@router.delete("/quizzes/{quiz_id}/", status_code=status.HTTP_204_NO_CONTENT)
def delete_quiz(quiz_id: UUID, p: PrincipalDep, quizzes: QuizCommandsDep,
                reason: Annotated[str, Query(max_length=500)] = "") -> Response:
    position = quizzes.archive(p.actor, quiz_id, reason)
    return Response(status_code=204, headers={"X-Position": str(position)})


@router.get("/quizzes/{quiz_id}/statistics/", response_model=StatisticsOut)
def statistics(quiz_id: UUID, p: PrincipalDep, attempts: AttemptsDep, position: Position
               ) -> StatisticsOut:
    attempts.catch_up(position)
    s = attempts.statistics(quiz_id) if may_author_quizzes(p.role) else None
    if s is None or not _authors(p, s):
        raise NotFound("Quiz not found")
    by_id = {r["question_id"]: r for r in s["per_question"]}
    questions = []
    for q in s["questions"]:
        row = by_id.get(q["id"])
        average = float(row["average_score"]) if row else None
        questions.append(QuestionStats(
            question_id=q["id"], text=q["text"], answered=int(row["answered"]) if row else 0,
            average_score=average, difficulty=round(1 - average, 4) if average is not None
            else None))
    return StatisticsOut(quiz_id=quiz_id, attempts=s["attempts"], students=s["students"],
                         average_percent=s["average_percent"],
                         lowest_percent=s["lowest_percent"],
                         highest_percent=s["highest_percent"], questions=questions)


@router.post("/quizzes/{quiz_id}/regrade/", response_model=RegradeOut)
def regrade(quiz_id: UUID, body: RegradeIn, p: PrincipalDep, quizzes: QuizCommandsDep,
            response: Response) -> RegradeOut:
    changes, position = quizzes.regrade(p.actor, quiz_id, body.dry_run,
                                        body.reason or "question corrected")
    response.headers["X-Position"] = str(position)
    return RegradeOut(dry_run=body.dry_run,
                      changes=[RegradeChangeOut(**vars(ch)) for ch in changes])


# -- attempts --------------------------------------------------------------------------------

def _attempt_view(attempts: AttemptsView, p: Principal, attempt_id: UUID,
                  row: dict[str, Any] | None = None) -> AttemptOut:
    """`row`, when given, from `attempts.with_quiz`."""
    row = row or attempts.with_quiz(attempt_id)
    if row is None or row["student_id"] != p.id:
        raise NotFound("Attempt not found")
    if row["quiz_questions"] is None:
        raise NotFound("Quiz not found")
    # The questions as the students' model holds them (keys stripped by the same function),
    # from the quiz row read with the attempt: archived quizzes, gone from that model, show
    # the same way.
    questions = Layout(row["question_order"], row["option_order"]).arrange(
        public_questions(row["quiz_questions"]))
    visible = answers_visible(row["status"], row["quiz_settings"],
                              int(row["submitted_attempts"]))
    feedback = None
    if visible:
        keys = {q["id"]: q for q in row["quiz_questions"]}
        feedback = [QuestionFeedback(
            question_id=qid, score=float((row["per_question"] or {}).get(qid, 0.0)),
            chosen_option_ids=row["answers"].get(qid, []),
            correct_option_ids=[o["id"] for o in keys[qid]["options"] if o["correct"]],
            explanation=keys[qid].get("explanation", ""))
            for qid in row["question_order"] if qid in keys]
    remaining = None
    if row["deadline"] is not None and row["status"] != SUBMITTED:
        remaining = max(0.0, (row["deadline"] - datetime.now(UTC)).total_seconds())
    submitted = row["status"] == SUBMITTED
    return AttemptOut(
        id=row["id"], quiz_id=row["quiz_id"], number=row["number"], status=row["status"],
        started_at=row["started_at"], deadline=row["deadline"],
        time_remaining_seconds=remaining, submitted_at=row["submitted_at"],
        automatic=row["automatic"], questions=questions, answers=row["answers"],
        score=row["score"] if submitted else None,
        max_score=row["max_score"] if submitted else None,
        percent=row["percent"] if submitted else None,
        answers_visible=visible, feedback=feedback)


@router.post("/quizzes/{quiz_id}/start/", status_code=status.HTTP_201_CREATED,
             response_model=AttemptOut)
def start(quiz_id: UUID, p: PrincipalDep, quizzes: QuizCommandsDep,
          attempts: AttemptsDep) -> Settling:
    started = quizzes.start(p.actor, quiz_id)
    # 200 when the attempt already in progress is returned instead of a new one.
    code = status.HTTP_200_OK if started.resumed else status.HTTP_201_CREATED
    return answer_after(attempts, started.position,
                        lambda: _attempt_view(attempts, p, started.id), code)


class SavedAnswerOut(BaseModel):
    attempt_id: UUID
    question_id: str
    option_ids: list[str]
    saved: bool


@router.post("/attempts/{attempt_id}/answer/", response_model=SavedAnswerOut)
def answer(attempt_id: UUID, body: AnswerIn, p: PrincipalDep, quizzes: QuizCommandsDep,
           response: Response) -> SavedAnswerOut:
    position = quizzes.answer(p.actor, attempt_id, body.question_id, body.option_ids)
    response.headers["X-Position"] = str(position)
    return SavedAnswerOut(attempt_id=attempt_id, question_id=body.question_id,
                          option_ids=sorted(set(body.option_ids)), saved=True)


@router.post("/attempts/{attempt_id}/submit/", response_model=AttemptOut)
def submit(attempt_id: UUID, p: PrincipalDep, quizzes: QuizCommandsDep,
           attempts: AttemptsDep) -> Settling:
    position = quizzes.submit(p.actor, attempt_id)
    return answer_after(attempts, position, lambda: _attempt_view(attempts, p, attempt_id))


@router.get("/attempts/{attempt_id}/", response_model=AttemptOut)
def get_attempt(attempt_id: UUID, p: PrincipalDep, quizzes: QuizCommandsDep,
                attempts: AttemptsDep, position: Position) -> Settling:
    # An attempt whose time ran out is submitted now, with what was saved.
    row = attempts.with_quiz(attempt_id)
    seen = (row["status"], row["deadline"]) if row else None
    settled = quizzes.settle(p.actor, attempt_id, seen)
    wait = max(settled, position or 0)
    # With nothing to wait for, the row just read is the answer.
    return answer_after(attempts, wait,
                        lambda: _attempt_view(attempts, p, attempt_id, None if wait else row))


@router.get("/attempts/", response_model=Page[dict[str, Any]])
def list_attempts(request: Request, p: PrincipalDep, attempts: AttemptsDep,
                  quiz_views: QuizViewsDep, pages: Pages, position: Position,
                  quiz_id: UUID | None = None) -> dict[str, Any]:
    """Your attempts; the owner of a quiz (or an overseer) may list all its attempts."""
    attempts.catch_up(position)
    student_id: UUID | None = p.id
    if quiz_id is not None and _authors_row(quiz_views, p, quiz_id) is not None:
        student_id = None
    count, rows = attempts.page(offset=pages.offset, limit=pages.page_size,
                                student_id=student_id, quiz_id=quiz_id)
    fields = ("id", "quiz_id", "student_id", "number", "status", "started_at", "deadline",
              "submitted_at", "automatic")
    results = []
    for r in rows:
        item = {k: r[k] for k in fields}
        if r["status"] == SUBMITTED:
            item.update(score=r["score"], max_score=r["max_score"], percent=r["percent"])
        results.append(item)
    return paginate(request, pages, count, results)


@router.get("/quizzes/{quiz_id}/grade/", response_model=GradeOut)
def my_grade(quiz_id: UUID, p: PrincipalDep, attempts: AttemptsDep,
             student_quizzes: StudentQuizzesDep, quiz_views: QuizViewsDep, position: Position
             ) -> GradeOut:
    """Your grade for a quiz across attempts, by the quiz's grading method."""
    attempts.catch_up(position)
    quiz = student_quizzes.get(quiz_id) or (
        quiz_views.get(quiz_id) if is_staff(p.role) else None)
    if quiz is None:
        raise NotFound("Quiz not found")
    method = GradingMethod(quiz["settings"].get("grading_method", "highest"))
    done = [a for a in attempts.of_student(quiz_id, p.id) if a["status"] == SUBMITTED]
    return GradeOut(
        quiz_id=quiz_id, grading_method=method.value,
        attempts=[{"id": a["id"], "number": a["number"], "percent": a["percent"]}
                  for a in done],
        attempts_allowed=int(quiz["settings"].get("attempts_allowed", 1)),
        grade=combine(method, [float(a["percent"]) for a in done]))
