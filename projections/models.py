"""Every read model, in the order the projector feeds them."""

from __future__ import annotations

from projections.base import ReadModelProjection
from projections.catalog import CatalogProjection
from projections.payments import PaymentsProjection
from projections.progress import ProgressProjection
from projections.quizzes import AttemptsProjection, QuizzesProjection, StudentQuizzesProjection
from projections.submissions import SubmissionsProjection
from projections.users import UsersProjection
from projections.workspaces import WorkspacesProjection

PROJECTIONS: tuple[type[ReadModelProjection], ...] = (
    UsersProjection, CatalogProjection, ProgressProjection, SubmissionsProjection,
    QuizzesProjection, StudentQuizzesProjection, AttemptsProjection, PaymentsProjection,
    WorkspacesProjection,
)
