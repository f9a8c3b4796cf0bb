"""Task attempts, the one home of the `task_attempts` table: record a prediction before a
task (`rows`), complete it after (`completion`), list a student's attempts (`rows`); what
either refuses is in `errors`. Import from the package (`from shared.attempts import ...`).
Prediction, grading and mastery all read and write attempts through here (none depends
on another for them).

Both the prediction function (`POST /api/prediction/complete`) and the grading function
(after grading an answer) finish an attempt with `complete_attempt`, so the attempt
row, the mastery state (BKT), the progress record and the retraining counter can never
disagree about what one answer did. A completion is one transaction owned by the
caller (`with engine.begin() as conn:`): either all of it happens or none.

Ownership and state are checked with the row locked (`FOR UPDATE`), so two
completions of the same attempt at once cannot both succeed: the second sees it
completed and gets `AttemptCompletedError` (HTTP 409).

Repeats count once: a student's second answer to the same question within
`REPEAT_WINDOW_S` of a counted one is graded and stored (status 'repeat', `repeat_of`
naming the counted attempt) but changes nothing else: not mastery, not progress, not
the retraining counter, and neither the predictor's training data nor its history
features (they read status 'completed' only). Resubmitting one multiple-choice answer
twenty times used to take mastery from 0.2 to 0.9999998; trying every option until
one is right would have worked as well. The first answer counts, so neither does
now. The check runs under a transaction-scoped advisory lock on (user, question), so
two submissions at once cannot both be first. Tasks without a question (a topic
prediction completed with a self-reported outcome) have no identity to compare and
are not deduplicated; each predicted attempt completes once.

`completed_at` is `clock_timestamp()`, not `now()`: now() is the transaction's start,
so attempts completed in one transaction (a batch import) would tie, and "the last 5"
of the history features would be ambiguous.
"""

from shared.attempts.completion import MASTERED_AT, REPEAT_WINDOW_S, VERDICTS, CompletedAttempt, complete_attempt
from shared.attempts.errors import (
    AttemptCompletedError,
    AttemptError,
    AttemptForbiddenError,
    AttemptMismatchError,
    AttemptNotFoundError,
    GradingRequiredError,
)
from shared.attempts.rows import (
    COMPLETED,
    PREDICTED,
    REPEAT,
    canonical_attempt_id,
    get_attempt,
    list_attempts,
    record_prediction,
    resolve_task,
)
from shared.curriculum import QuestionNotFoundError, TopicNotFoundError

__all__ = [
    "COMPLETED",
    "MASTERED_AT",
    "PREDICTED",
    "REPEAT",
    "REPEAT_WINDOW_S",
    "VERDICTS",
    "AttemptCompletedError",
    "AttemptError",
    "AttemptForbiddenError",
    "AttemptMismatchError",
    "AttemptNotFoundError",
    "CompletedAttempt",
    "GradingRequiredError",
    "QuestionNotFoundError",
    "TopicNotFoundError",
    "canonical_attempt_id",
    "complete_attempt",
    "get_attempt",
    "list_attempts",
    "record_prediction",
    "resolve_task",
]
