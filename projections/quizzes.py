"""Quiz read models.

The trainers' model holds everything, answer keys included. The students' model is a
separate table that only ever receives published quizzes with the keys stripped, so
no query against it can leak an answer. Attempts have a model of their own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg.rows import DictRow
from psycopg.types.json import Jsonb

from domain.quizzes import Attempt, Quiz, QuizSettings
from projections.base import Handler, ReadModel, ReadModelProjection, Statement

QUIZ_EVENTS = (Quiz.Requested, Quiz.Generated, Quiz.GenerationFailed, Quiz.Edited,
               Quiz.Published, Quiz.Archived)
PUBLIC_SETTINGS = ("time_limit_seconds", "attempts_allowed", "grading_method",
                   "shuffle_questions", "shuffle_options", "partial_credit", "show_answers")


def _st(sql: str, *params: Any) -> Statement:
    return sql, params


# Lists show how many questions a quiz has, not the questions: the count is computed in
# the database rather than shipping every question set to count it.
SUMMARY_COLUMNS = ("id, title, track, settings, published_at, "
                   "jsonb_array_length(questions) AS question_count")


class QuizzesView(ReadModel):
    topics = tuple(get_topic(cls) for cls in QUIZ_EVENTS)
    tables = ("rm_quizzes",)
    ddl = """
CREATE TABLE IF NOT EXISTS rm_quizzes (
    id uuid PRIMARY KEY,
    owner_id uuid NOT NULL,
    title text NOT NULL,
    prompt text NOT NULL,
    generation_type text NOT NULL,
    num_questions integer NOT NULL,
    track text,
    status text NOT NULL,
    failure_reason text,
    questions jsonb NOT NULL DEFAULT '[]',
    settings jsonb NOT NULL,
    provenance jsonb,
    created_at timestamptz NOT NULL,
    published_at timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_quizzes_owner ON rm_quizzes (owner_id, created_at)
"""
    COLUMNS = ("id, owner_id, title, prompt, generation_type, num_questions, track, status, "
               "failure_reason, questions, settings, provenance, created_at, published_at, "
               "updated_at")

    def get(self, quiz_id: UUID) -> DictRow | None:
        return self.fetch_one(f"SELECT {self.COLUMNS} FROM rm_quizzes WHERE id = %s",
                              (quiz_id,))

    def page(self, *, offset: int, limit: int, owner_id: UUID | None,
             status: str | None) -> tuple[int, list[DictRow]]:
        return self.page_of("rm_quizzes", SUMMARY_COLUMNS + ", status",
            "(%(owner)s::uuid IS NULL OR owner_id = %(owner)s) AND "
            "(%(status)s::text IS NULL OR status = %(status)s)",
            {"owner": owner_id, "status": status},
            "created_at DESC, id", offset, limit)


class QuizzesProjection(ReadModelProjection):
    name = "quizzes"
    view_class = QuizzesView

    def handlers(self) -> dict[type, Handler]:
        return {
            Quiz.Requested: lambda e: [_st(
                "INSERT INTO rm_quizzes (id, owner_id, title, prompt, generation_type, "
                "num_questions, track, status, settings, created_at, updated_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, %s, 'generating', %s, %s, %s) ON CONFLICT DO NOTHING",
                e.originator_id, e.owner_id, e.title, e.prompt, e.generation_type,
                e.num_questions, e.track, json.dumps(QuizSettings().as_dict()), e.timestamp,
                e.timestamp)],
            Quiz.Generated: lambda e: [_st(
                "UPDATE rm_quizzes SET status = 'draft', questions = %s, provenance = %s, "
                "updated_at = %s WHERE id = %s", json.dumps(e.questions),
                json.dumps(e.provenance), e.timestamp, e.originator_id)],
            Quiz.GenerationFailed: lambda e: [_st(
                "UPDATE rm_quizzes SET status = 'failed', failure_reason = %s, provenance = %s, "
                "updated_at = %s WHERE id = %s", e.reason, json.dumps(e.provenance),
                e.timestamp, e.originator_id)],
            Quiz.Edited: lambda e: [_st(
                "UPDATE rm_quizzes SET title = %s, questions = %s, settings = %s, "
                "updated_at = %s WHERE id = %s", e.title, json.dumps(e.questions),
                json.dumps(e.settings), e.timestamp, e.originator_id)],
            Quiz.Published: lambda e: [_st(
                "UPDATE rm_quizzes SET status = 'published', published_at = %s, "
                "updated_at = %s WHERE id = %s", e.timestamp, e.timestamp, e.originator_id)],
            Quiz.Archived: lambda e: [_st(
                "UPDATE rm_quizzes SET status = 'archived', updated_at = %s WHERE id = %s",
                e.timestamp, e.originator_id)],
        }


def public_questions(questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Questions as students may see them: no correct flags, no explanations."""
    return [{"id": q["id"], "text": q["text"], "type": q["type"],
             "options": [{"id": o["id"], "text": o["text"]} for o in q["options"]]}
            for q in questions]


class StudentQuizzesView(ReadModel):
    topics = tuple(get_topic(cls) for cls in QUIZ_EVENTS)
    tables = ("rm_student_quizzes", "rm_student_quiz_drafts")
    # Drafts are kept aside (keys stripped) so publishing can copy them over.
    ddl = """
CREATE TABLE IF NOT EXISTS rm_student_quiz_drafts (
    id uuid PRIMARY KEY,
    title text NOT NULL,
    track text,
    questions jsonb NOT NULL DEFAULT '[]',
    settings jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_student_quizzes (
    id uuid PRIMARY KEY,
    title text NOT NULL,
    track text,
    questions jsonb NOT NULL,
    settings jsonb NOT NULL,
    published_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_student_quizzes_track ON rm_student_quizzes (track, published_at)
"""
    COLUMNS = "id, title, track, questions, settings, published_at"

    def get(self, quiz_id: UUID) -> DictRow | None:
        return self.fetch_one(f"SELECT {self.COLUMNS} FROM rm_student_quizzes WHERE id = %s",
                              (quiz_id,))

    def page(self, *, offset: int, limit: int, student_id: UUID
             ) -> tuple[int, list[DictRow]]:
        """The quizzes a student sees: those of no track and those of the student's track
        (all of them while the student has none). The track comes from the users model in
        the same query, which saves a round trip per list."""
        return self.page_of("rm_student_quizzes", SUMMARY_COLUMNS,
            "COALESCE(track = (SELECT track FROM rm_users WHERE id = %(student)s), TRUE)",
            {"student": student_id}, "published_at DESC, id", offset, limit)


class StudentQuizzesProjection(ReadModelProjection):
    name = "student_quizzes"
    view_class = StudentQuizzesView

    def handlers(self) -> dict[type, Handler]:
        return {
            Quiz.Requested: lambda e: [_st(
                "INSERT INTO rm_student_quiz_drafts (id, title, track, settings) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING", e.originator_id, e.title,
                e.track, json.dumps(self._public_settings(QuizSettings().as_dict())))],
            Quiz.Generated: lambda e: [_st(
                "UPDATE rm_student_quiz_drafts SET questions = %s WHERE id = %s",
                json.dumps(public_questions(e.questions)), e.originator_id)],
            Quiz.Edited: self.edited,
            Quiz.Published: lambda e: [_st(
                "INSERT INTO rm_student_quizzes SELECT id, title, track, questions, settings, %s "
                "FROM rm_student_quiz_drafts WHERE id = %s ON CONFLICT DO NOTHING",
                e.timestamp, e.originator_id)],
            Quiz.Archived: lambda e: [_st("DELETE FROM rm_student_quizzes WHERE id = %s",
                                          e.originator_id)],
        }

    @staticmethod
    def _public_settings(settings: dict[str, Any]) -> dict[str, Any]:
        return {k: settings[k] for k in PUBLIC_SETTINGS if k in settings}

    def edited(self, e: Quiz.Edited) -> Iterable[Statement]:
        values = (e.title, json.dumps(public_questions(e.questions)),
                  json.dumps(self._public_settings(e.settings)), e.originator_id)
        yield _st("UPDATE rm_student_quiz_drafts SET title = %s, questions = %s, "
                  "settings = %s WHERE id = %s", *values)
        yield _st("UPDATE rm_student_quizzes SET title = %s, questions = %s, "
                  "settings = %s WHERE id = %s", *values)


ATTEMPT_EVENTS = (Attempt.Started, Attempt.AnswerSaved, Attempt.Submitted, Attempt.Regraded)
SAVE_ANSWER = "UPDATE rm_attempts SET answers = answers || %s WHERE id = %s"
ATTEMPT_COLUMNS = ("id, quiz_id, student_id, number, status, question_order, option_order, "
                   "answers, started_at, deadline, submitted_at, automatic, score, max_score, "
                   "percent, per_question, regraded_at")
ATTEMPT_IN_JOIN = ", ".join(f"a.{column}" for column in ATTEMPT_COLUMNS.split(", "))


class AttemptsView(ReadModel):
    topics = tuple(get_topic(cls) for cls in ATTEMPT_EVENTS)
    merge_statements = frozenset({SAVE_ANSWER})
    tables = ("rm_attempts", "rm_quiz_totals", "rm_quiz_takers", "rm_quiz_question_totals")
    ddl = """
CREATE TABLE IF NOT EXISTS rm_attempts (
    id uuid PRIMARY KEY,
    quiz_id uuid NOT NULL,
    student_id uuid NOT NULL,
    number integer NOT NULL,
    status text NOT NULL,
    question_order jsonb NOT NULL,
    option_order jsonb NOT NULL,
    answers jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL,
    deadline timestamptz,
    submitted_at timestamptz,
    automatic boolean,
    score double precision,
    max_score double precision,
    percent double precision,
    per_question jsonb,
    regraded_at timestamptz
);
CREATE INDEX IF NOT EXISTS rm_attempts_student ON rm_attempts (student_id, started_at);
CREATE INDEX IF NOT EXISTS rm_attempts_quiz ON rm_attempts (quiz_id, student_id, number);
CREATE INDEX IF NOT EXISTS rm_attempts_quiz_percent ON rm_attempts (quiz_id, percent)
    WHERE status = 'submitted';
CREATE TABLE IF NOT EXISTS rm_quiz_totals (
    quiz_id uuid PRIMARY KEY,
    attempts integer NOT NULL,
    students integer NOT NULL,
    percent_sum double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS rm_quiz_takers (
    quiz_id uuid NOT NULL,
    student_id uuid NOT NULL,
    PRIMARY KEY (quiz_id, student_id)
);
CREATE TABLE IF NOT EXISTS rm_quiz_question_totals (
    quiz_id uuid NOT NULL,
    question_id text NOT NULL,
    answered integer NOT NULL,
    score_sum double precision NOT NULL,
    PRIMARY KEY (quiz_id, question_id)
);
INSERT INTO rm_quiz_takers
    SELECT DISTINCT quiz_id, student_id FROM rm_attempts a WHERE status = 'submitted'
      AND NOT EXISTS (SELECT 1 FROM rm_quiz_totals t WHERE t.quiz_id = a.quiz_id)
    ON CONFLICT DO NOTHING;
INSERT INTO rm_quiz_totals
    SELECT quiz_id, count(*), count(DISTINCT student_id), sum(percent) FROM rm_attempts a
    WHERE status = 'submitted'
      AND NOT EXISTS (SELECT 1 FROM rm_quiz_totals t WHERE t.quiz_id = a.quiz_id)
    GROUP BY quiz_id ON CONFLICT DO NOTHING;
INSERT INTO rm_quiz_question_totals
    SELECT quiz_id, q.key, count(*), sum(q.value::double precision)
    FROM rm_attempts a, jsonb_each_text(a.per_question) q
    WHERE status = 'submitted'
      AND NOT EXISTS (SELECT 1 FROM rm_quiz_question_totals t WHERE t.quiz_id = a.quiz_id)
    GROUP BY quiz_id, q.key ON CONFLICT DO NOTHING
"""
    COLUMNS = ATTEMPT_COLUMNS

    def with_quiz(self, attempt_id: UUID) -> DictRow | None:
        """The attempt with all that showing it takes, in one query: its quiz's questions
        and settings from the authors' model (None when the quiz is gone) and how many of
        the student's attempts at the quiz are submitted (for the after-the-last-attempt
        answer policy)."""
        return self.fetch_one(
            f"SELECT {ATTEMPT_IN_JOIN}, q.questions AS quiz_questions, "
            "q.settings AS quiz_settings, (SELECT count(*) FROM rm_attempts s "
            " WHERE s.quiz_id = a.quiz_id AND s.student_id = a.student_id "
            " AND s.status = 'submitted') AS submitted_attempts "
            "FROM rm_attempts a LEFT JOIN rm_quizzes q ON q.id = a.quiz_id WHERE a.id = %s",
            (attempt_id,))

    def page(self, *, offset: int, limit: int, student_id: UUID | None,
             quiz_id: UUID | None) -> tuple[int, list[DictRow]]:
        return self.page_of("rm_attempts", self.COLUMNS,
            "(%(student)s::uuid IS NULL OR student_id = %(student)s) AND "
            "(%(quiz)s::uuid IS NULL OR quiz_id = %(quiz)s)",
            {"student": student_id, "quiz": quiz_id}, "started_at DESC, id", offset, limit)

    def of_student(self, quiz_id: UUID, student_id: UUID) -> list[DictRow]:
        return self.fetch_all(
            f"SELECT {self.COLUMNS} FROM rm_attempts WHERE quiz_id = %s AND student_id = %s "
            "ORDER BY number", (quiz_id, student_id))

    def statistics(self, quiz_id: UUID) -> DictRow | None:
        """The quiz's owner and questions (from the authors' model, to check who may see
        them and to name the questions) with its submitted attempts' summary and per-question
        scores, in one query on the running totals (a few rows, however many attempts there
        are); the lowest and highest percent are the two ends of an index. None when there
        is no such quiz."""
        return self.fetch_one(
            "SELECT q.owner_id, q.questions, "
            "COALESCE(t.attempts, 0) AS attempts, COALESCE(t.students, 0) AS students, "
            "round((t.percent_sum / NULLIF(t.attempts, 0))::numeric, 2)::float AS average_percent, "
            "(SELECT min(percent) FROM rm_attempts WHERE quiz_id = %(quiz)s "
            " AND status = 'submitted') AS lowest_percent, "
            "(SELECT max(percent) FROM rm_attempts WHERE quiz_id = %(quiz)s "
            " AND status = 'submitted') AS highest_percent, "
            "(SELECT COALESCE(jsonb_agg(jsonb_build_object('question_id', question_id, "
            "  'answered', answered, 'average_score', "
            "  round((score_sum / answered)::numeric, 4))), '[]'::jsonb) "
            " FROM rm_quiz_question_totals WHERE quiz_id = %(quiz)s AND answered > 0"
            ") AS per_question "
            "FROM rm_quizzes q LEFT JOIN rm_quiz_totals t ON t.quiz_id = q.id "
            "WHERE q.id = %(quiz)s",
            {"quiz": quiz_id})


# Running totals for statistics. A submission adds its percent and per-question scores,
# and its student to the quiz's takers (counted once); a regrade takes the attempt's old
# scores (read from its row before the row changes) away and adds the new. The statements
# run in the same transaction as the row's update, in order, so totals and rows can't
# disagree. Each finds what it needs by primary key: a rebuild fills tables whose other
# indexes come only at its end.
ADD_TOTALS = (
    "WITH attempt AS (SELECT quiz_id, student_id FROM rm_attempts "
    "  WHERE id = %s AND status <> 'submitted'), "
    "taker AS (INSERT INTO rm_quiz_takers SELECT quiz_id, student_id FROM attempt "
    "  ON CONFLICT DO NOTHING RETURNING 1) "
    "INSERT INTO rm_quiz_totals SELECT quiz_id, 1, (SELECT count(*) FROM taker), %s "
    "FROM attempt ON CONFLICT (quiz_id) DO UPDATE SET "
    "attempts = rm_quiz_totals.attempts + 1, "
    "students = rm_quiz_totals.students + EXCLUDED.students, "
    "percent_sum = rm_quiz_totals.percent_sum + EXCLUDED.percent_sum")
REGRADE_TOTALS = (
    "UPDATE rm_quiz_totals t SET percent_sum = t.percent_sum - a.percent + %s "
    "FROM rm_attempts a WHERE a.id = %s AND a.status = 'submitted' AND t.quiz_id = a.quiz_id")
REMOVE_SCORES = (
    "UPDATE rm_quiz_question_totals t SET answered = t.answered - 1, "
    "score_sum = t.score_sum - q.value::double precision "
    "FROM rm_attempts a, jsonb_each_text(a.per_question) q "
    "WHERE a.id = %s AND a.status = 'submitted' AND t.quiz_id = a.quiz_id "
    "AND t.question_id = q.key")
_ADD_SCORES = (
    "INSERT INTO rm_quiz_question_totals SELECT a.quiz_id, q.key, 1, q.value::double precision "
    "FROM rm_attempts a, jsonb_each_text(%s::jsonb) q WHERE a.id = %s AND a.status {} "
    "'submitted' ON CONFLICT (quiz_id, question_id) DO UPDATE SET "
    "answered = rm_quiz_question_totals.answered + 1, "
    "score_sum = rm_quiz_question_totals.score_sum + EXCLUDED.score_sum")
ADD_SCORES_ON_SUBMISSION = _ADD_SCORES.format("<>")
ADD_SCORES_ON_REGRADE = _ADD_SCORES.format("=")


class AttemptsProjection(ReadModelProjection):
    name = "attempts"
    view_class = AttemptsView

    def handlers(self) -> dict[type, Handler]:
        return {
            Attempt.Started: lambda e: [_st(
                "INSERT INTO rm_attempts (id, quiz_id, student_id, number, status, "
                "question_order, option_order, started_at, deadline) VALUES "
                "(%s, %s, %s, %s, 'in_progress', %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                e.originator_id, e.quiz_id, e.student_id, e.number,
                json.dumps(e.question_order), json.dumps(e.option_order), e.timestamp,
                e.deadline)],
            Attempt.AnswerSaved: lambda e: [_st(
                SAVE_ANSWER, Jsonb({e.question_id: e.option_ids}), e.originator_id)],
            Attempt.Submitted: self.submitted,
            Attempt.Regraded: self.regraded,
        }

    def submitted(self, e: Attempt.Submitted) -> Iterable[Statement]:
        scores = json.dumps(e.per_question)
        yield _st(ADD_TOTALS, e.originator_id, _percent(e))
        yield _st(ADD_SCORES_ON_SUBMISSION, scores, e.originator_id)
        yield self._graded(e, scores, "submitted_at = %s, automatic = %s, "
                           "status = 'submitted'", e.timestamp, e.automatic)

    def regraded(self, e: Attempt.Regraded) -> Iterable[Statement]:
        scores = json.dumps(e.per_question)
        yield _st(REGRADE_TOTALS, _percent(e), e.originator_id)
        yield _st(REMOVE_SCORES, e.originator_id)
        yield _st(ADD_SCORES_ON_REGRADE, scores, e.originator_id)
        yield self._graded(e, scores, "regraded_at = %s", e.timestamp)

    @staticmethod
    def _graded(e: Any, scores: str, extra: str, *extra_params: Any) -> Statement:
        return _st(f"UPDATE rm_attempts SET score = %s, max_score = %s, percent = %s, "
                   f"per_question = %s, {extra} WHERE id = %s",
                   e.score, e.max_score, _percent(e), scores, *extra_params, e.originator_id)


def _percent(e: Attempt.Submitted | Attempt.Regraded) -> float:
    return round(100.0 * e.score / e.max_score, 2) if e.max_score else 0.0
