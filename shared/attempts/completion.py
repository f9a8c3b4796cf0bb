"""Completing an attempt: the attempt row, mastery (BKT), the progress record and the
retraining counter in the caller's one transaction (see the package docstring), with
repeats of a counted answer stored but counting for nothing."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from shared.attempts.errors import (
    AttemptCompletedError,
    AttemptForbiddenError,
    AttemptMismatchError,
    GradingRequiredError,
)
from shared.attempts.rows import COMPLETED, PREDICTED, REPEAT, locked_attempt, resolve_task
from shared.curriculum import QuestionNotFoundError, question_by_id
from shared.learning.retrain_requests import RetrainRequest, completed_task_count, count_completed_task
from shared.mastery.bkt import PASS_CREDIT
from shared.mastery.store import current_mastery, record_answer
from shared.users import ensure_user_id

#: P(known) from which a topic counts as mastered in student_progress: the usual
#: mastery-learning criterion of BKT tutors (Corbett & Anderson, 1995).
MASTERED_AT = 0.95

VERDICTS = ("correct", "partially_correct", "incorrect", "contradictory")

#: a second answer to the same question within this many seconds of a counted one is
#: stored as a repeat and counts for nothing. An hour covers a sitting: the feedback
#: of the first answer (which names the right option) is fresh, so a repeat shows
#: recall of the feedback, not of the skill; a later sitting is a new opportunity.
REPEAT_WINDOW_S = 3600.0


@dataclass
class CompletedAttempt:
    attempt_id: str
    user_id: str
    topic_id: str
    question_id: str | None
    difficulty: int
    correct: bool
    credit: float  # the evidence in [0, 1] given to mastery (score/10 for short answers)
    score: float
    time_seconds: float | None
    predicted_correct: float | None
    predicted_seconds: float | None
    predictor: str | None
    predictor_version: str | None
    mastery: float
    completed_at: datetime
    completed_tasks: int  # the global counter after this completion
    retrain_request: RetrainRequest | None
    counted: bool = True  # False for a repeat (it changed no mastery, progress or counter)
    repeat_of: str | None = None  # the counted attempt this one repeats

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["retrain_request"] = self.retrain_request.as_dict() if self.retrain_request else None
        return out


def complete_attempt(
    conn: sa.Connection,
    user_id: str,
    attempt_id: str | None = None,
    *,
    topic_id: str | None = None,
    question_id: str | None = None,
    difficulty: int | None = None,
    correct: float | bool,
    time_seconds: float | None = None,
    score: float | None = None,
    verdict: str | None = None,
    feedback: str | None = None,
    answer: str | None = None,
    grader: str | None = None,
    grader_version: str | None = None,
    retrain_every: int | None = None,
    is_correct: bool | None = None,
    self_reported: bool = False,
) -> CompletedAttempt:
    """Record one finished task: the attempt row, mastery, progress, the retrain counter.

    - `attempt_id` names a 'predicted' row of this user (from POST /api/prediction): it
      is completed in place, so the actual outcome sits next to the prediction. Topic,
      question and difficulty come from the row; any that the caller also passes must
      match. Without `attempt_id` a new completed row is written (topic or question
      required).
    - `correct` is the credit in [0, 1] (1/0 for right/wrong, score/10 for a graded
      short answer): the BKT update takes it as soft evidence. Whether the answer
      counts as right is `is_correct` (the grader's verdict) when given, else
      `verdict == "correct"`, else `credit >= PASS_CREDIT` (7/10); the row stores it
      as `correct`, and mastery moves up only for a right answer, down (or not at
      all) for any other. `score` defaults to credit * 10.
    - A repeat of the same question within REPEAT_WINDOW_S is stored with status
      'repeat' and counts for nothing (`counted` False, see the module docstring).
    - `retrain_every` defaults to the setting RETRAIN_EVERY_COMPLETED_TASKS.
    - `self_reported` (POST /api/prediction/complete: the client says right or wrong):
      refused with GradingRequiredError for a task on a question of the bank, whose
      answer only grading may judge; otherwise a student could declare any question
      answered right without answering it.

    Raises an AttemptError subclass (404 / 403 / 409 / 422) and changes nothing then.
    """
    credit = float(correct)
    if not 0.0 <= credit <= 1.0:
        raise AttemptMismatchError(f"correct must be in [0, 1], got {credit}.")
    if time_seconds is not None and not (time_seconds >= 0 and math.isfinite(time_seconds)):  # NaN, inf
        raise AttemptMismatchError(f"time_seconds must be >= 0, got {time_seconds}.")
    if score is not None and not 0.0 <= score <= 10.0:
        raise AttemptMismatchError(f"score must be in [0, 10], got {score}.")
    if verdict is not None and verdict not in VERDICTS:
        raise AttemptMismatchError(f"verdict must be one of {VERDICTS}, got {verdict!r}.")
    score = round(credit * 10.0, 3) if score is None else float(score)
    if is_correct is None:
        is_correct = verdict == "correct" if verdict is not None else credit >= PASS_CREDIT
    is_correct = bool(is_correct)

    predicted: dict[str, Any] = {}
    if attempt_id is not None:
        row = locked_attempt(conn, attempt_id)
        attempt_id = str(row["id"])  # canonical, whichever spelling the caller used
        if row["user_id"] != user_id:
            raise AttemptForbiddenError("This attempt belongs to another student.")
        if row["status"] != PREDICTED:
            raise AttemptCompletedError(f"Attempt {attempt_id} is already completed.")
        for name, given in (("topic_id", topic_id), ("question_id", question_id), ("difficulty", difficulty)):
            if given is not None and row[name] is not None and given != row[name]:
                raise AttemptMismatchError(f"This attempt is for another {name}: {row[name]!r}.")
        if row["question_id"] is None and question_id is not None:
            # predicted for a topic, answered on a question: it must be of that topic
            question = question_by_id(conn, question_id)
            if question is None:
                raise QuestionNotFoundError("No such question.")
            if question["topic_id"] != row["topic_id"]:
                raise AttemptMismatchError(f"This attempt is for topic {row['topic_id']!r}; the question is not.")
        topic_id = row["topic_id"]
        question_id = row["question_id"] if row["question_id"] is not None else question_id
        if self_reported and question_id is not None:
            raise GradingRequiredError(
                f"Attempt {attempt_id} is for question {question_id!r}: send the answer to POST /api/grading "
                "with this attempt_id."
            )
        difficulty = int(row["difficulty"])
        predicted = row
        repeat_of = _counted_recently(conn, user_id, question_id)
        completed_at = conn.execute(
            sa.text(
                """UPDATE task_attempts
                      SET status = :status, repeat_of = CAST(:repeat_of AS uuid),
                          question_id = :question_id, correct = :correct,
                          score = :score, verdict = :verdict, feedback = :feedback, answer = :answer,
                          grader = :grader, grader_version = :grader_version,
                          time_seconds = :time_seconds, completed_at = clock_timestamp()
                    WHERE id = CAST(:id AS uuid)
                RETURNING completed_at"""
            ),
            {
                "id": attempt_id,
                "status": REPEAT if repeat_of else COMPLETED,
                "repeat_of": repeat_of,
                "question_id": question_id,
                "correct": is_correct,
                "score": score,
                "verdict": verdict,
                "feedback": feedback,
                "answer": answer,
                "grader": grader,
                "grader_version": grader_version,
                "time_seconds": time_seconds,
            },
        ).scalar_one()
    else:
        topic_id, question_id, difficulty = resolve_task(conn, topic_id, question_id, difficulty)
        if self_reported and question_id is not None:
            raise GradingRequiredError(f"Question {question_id!r} is answered through POST /api/grading.")
        ensure_user_id(conn, user_id)
        repeat_of = _counted_recently(conn, user_id, question_id)
        inserted = conn.execute(
            sa.text(
                """INSERT INTO task_attempts (user_id, question_id, topic_id, difficulty, status,
                                              repeat_of, answer, correct, score, verdict, feedback,
                                              grader, grader_version, time_seconds, completed_at)
                   VALUES (:user_id, :question_id, :topic_id, :difficulty, :status,
                           CAST(:repeat_of AS uuid),
                           :answer, :correct, :score, :verdict, :feedback, :grader,
                           :grader_version, :time_seconds, clock_timestamp())
                   RETURNING id, completed_at"""
            ),
            {
                "user_id": user_id,
                "question_id": question_id,
                "topic_id": topic_id,
                "difficulty": difficulty,
                "status": REPEAT if repeat_of else COMPLETED,
                "repeat_of": repeat_of,
                "answer": answer,
                "correct": is_correct,
                "score": score,
                "verdict": verdict,
                "feedback": feedback,
                "grader": grader,
                "grader_version": grader_version,
                "time_seconds": time_seconds,
            },
        ).one()
        attempt_id, completed_at = str(inserted[0]), inserted[1]

    if repeat_of is None:
        mastery = record_answer(conn, user_id, topic_id, credit, passed=is_correct)
        _update_progress(conn, user_id, topic_id, is_correct, time_seconds, mastery)
        if retrain_every is None:
            from shared.config import get_settings

            retrain_every = get_settings().retrain_every_completed_tasks
        completed_tasks, request = count_completed_task(
            conn, every=retrain_every, user_id=user_id, attempt_id=str(attempt_id)
        )
    else:
        mastery = float(current_mastery(conn, user_id, topic_id) or 0.0)
        completed_tasks, request = completed_task_count(conn), None
    return CompletedAttempt(
        attempt_id=str(attempt_id),
        user_id=user_id,
        topic_id=topic_id,
        question_id=question_id,
        difficulty=int(difficulty),
        correct=is_correct,
        credit=credit,
        score=score,
        time_seconds=time_seconds,
        predicted_correct=_opt_float(predicted.get("predicted_correct")),
        predicted_seconds=_opt_float(predicted.get("predicted_seconds")),
        predictor=predicted.get("predictor"),
        predictor_version=predicted.get("predictor_version"),
        mastery=mastery,
        completed_at=completed_at,
        completed_tasks=completed_tasks,
        retrain_request=request,
        counted=repeat_of is None,
        repeat_of=repeat_of,
    )


def _counted_recently(conn: sa.Connection, user_id: str, question_id: str | None) -> str | None:
    """The user's counted answer to this question within REPEAT_WINDOW_S, if any.

    Takes a transaction-scoped advisory lock on (user, question) first, held until the
    caller commits, so of two answers submitted at once exactly one is counted."""
    if question_id is None:
        return None
    conn.execute(
        sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 17))"),
        {"key": f"task_attempts:{user_id}:{question_id}"},
    )
    found = conn.execute(
        sa.text(
            """SELECT id FROM task_attempts
                WHERE user_id = :user_id AND question_id = :question_id AND status = 'completed'
                  AND completed_at > clock_timestamp() - make_interval(secs => :window)
                ORDER BY completed_at DESC
                LIMIT 1"""
        ),
        {"user_id": user_id, "question_id": question_id, "window": float(REPEAT_WINDOW_S)},
    ).scalar()
    return None if found is None else str(found)


def _update_progress(
    conn: sa.Connection,
    user_id: str,
    topic_id: str,
    correct: bool,
    time_seconds: float | None,
    mastery: float,
) -> None:
    conn.execute(
        sa.text(
            """INSERT INTO student_progress (user_id, topic_id, tasks_completed, tasks_correct,
                                             total_seconds, status, last_activity_at)
               VALUES (:user_id, :topic_id, 1, :correct, :seconds, :status, now())
               ON CONFLICT (user_id, topic_id) DO UPDATE
                  SET tasks_completed = student_progress.tasks_completed + 1,
                      tasks_correct = student_progress.tasks_correct + EXCLUDED.tasks_correct,
                      total_seconds = student_progress.total_seconds + EXCLUDED.total_seconds,
                      status = EXCLUDED.status,
                      last_activity_at = now()"""
        ),
        {
            "user_id": user_id,
            "topic_id": topic_id,
            "correct": int(correct),
            "seconds": float(time_seconds or 0.0),
            "status": "mastered" if mastery >= MASTERED_AT else "in_progress",
        },
    )


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
