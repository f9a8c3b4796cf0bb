"""Grade one answer end to end: check who asks, grade, record the attempt and mastery.

The order matters for cost and consistency:
1. read the question (404) and, when an `attempt_id` is given, check it exists, belongs
   to the student and is still open (404 / 403 / 409), before any LLM call is paid for;
2. grade with no database connection held (an LLM call can take seconds);
3. write everything in one transaction through `shared.attempts.complete_attempt`
   (the ONE function that completes an attempt: the row, the BKT mastery update with
   score/10 as soft evidence, student_progress, the retraining counter), which re-checks
   the attempt under a row lock, so two submissions of one attempt cannot both count.

It raises domain errors only: `GradingError` subclasses for the answer and the
question, `shared.attempts.AttemptError` subclasses for the attempt; the
grading function maps both to HTTP statuses (each names its status and code).
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import sqlalchemy as sa

from shared.attempts import (
    AttemptCompletedError,
    AttemptForbiddenError,
    AttemptMismatchError,
    AttemptNotFoundError,
    complete_attempt,
    get_attempt,
)
from shared.curriculum import QuestionNotFoundError, question_by_id
from shared.errors import DomainError, Kind
from shared.grading.contract import Grade, GraderUnavailableError, Question
from shared.grading.llm_grader import LLMGrader, LLMOutcome, llm_configured
from shared.grading.mcq import ChoiceOutOfRangeError, grade_mcq
from shared.grading.offline import LexicalGrader, OfflineGrader, default_offline_grader
from shared.grading.text import looks_like_injection, reference_answers
from shared.identity import Principal
from shared.llm import log_failure, log_generation
from shared.users import ensure_user

log = logging.getLogger(__name__)

#: longest short answer graded (characters); longer is a 422. Bodies over
#: MAX_REQUEST_BYTES never get this far (413).
MAX_ANSWER_CHARS = 4000


def load_question(conn: sa.Connection, question_id: str) -> Question | None:
    """The question as graders see it (its references split), from curriculum's one query."""
    row = question_by_id(conn, question_id)
    if row is None:
        return None
    return Question(
        id=row["id"],
        topic_id=row["topic_id"],
        kind=row["kind"],
        prompt=row["prompt"],
        difficulty=int(row["difficulty"]),
        options=list(row["options"]) if row["options"] is not None else None,
        correct_option=row["correct_option"],
        references=tuple(reference_answers(row["reference_answer"])),
        rubric=row["rubric"],
        explanation=row["explanation"],
        max_score=int(row["max_score"]),
    )


class GradingError(DomainError):
    """What grading refuses about the answer or the question (a `DomainError`)."""

    kind: ClassVar[Kind] = "invalid"
    code: ClassVar[str] = "bad_request"


class InvalidAnswerError(GradingError, ValueError):
    """The answer does not fit the question (an index for MCQ, text for a short answer)."""

    kind, code = "invalid", "validation_error"


class NotGradableError(GradingError):
    """The question cannot be graded (a short answer without a reference answer)."""

    kind, code = "conflict", "not_gradable"


class GradingService:
    """One per process; graders are injectable for tests (a stubbed LLM router)."""

    def __init__(self, offline: OfflineGrader | None = None, llm: LLMGrader | None = None) -> None:
        self._offline = offline
        self.llm = llm or LLMGrader()

    @property
    def offline(self) -> OfflineGrader:
        return self._offline or default_offline_grader()

    def grade_short_answer(
        self, question: Question, answer: str, user_id: str | None = None
    ) -> tuple[Grade, LLMOutcome | None, Exception | None]:
        """(grade, LLM outcome or None, LLM error or None): LLM first when one is configured,
        the offline chain always (it is the LLM's check and its fallback)."""
        try:
            offline = self.offline.grade(question, answer)
        except GraderUnavailableError:
            offline = LexicalGrader().grade(question, answer)  # needs nothing; cannot fail
        if looks_like_injection(answer) and "possible_prompt_injection" not in offline.flags:
            offline = _flag(offline, "possible_prompt_injection")
        if not llm_configured(self.llm.router):
            return offline, None, None
        try:
            outcome = self.llm.grade(question, answer, offline, user_id=user_id)
        except GraderUnavailableError as exc:
            log.warning("LLM grader unavailable, using the %s grader: %s", offline.grader, exc)
            return _flag(offline, "llm_unavailable"), None, getattr(exc, "llm_error", None)
        return outcome.grade, outcome, None

    def grade(
        self,
        engine: sa.Engine,
        principal: Principal,
        *,
        question_id: str,
        answer: int | str,
        time_seconds: float | None = None,
        attempt_id: str | None = None,
        user_id: str | None = None,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        user_id = user_id or principal.uid
        principal.require_self_or_admin(user_id)
        with engine.connect() as conn:
            question = load_question(conn, question_id)
            if question is None:
                raise QuestionNotFoundError("No such question.")
            if attempt_id is not None:
                _check_open_attempt(conn, attempt_id, user_id, question.id)

        outcome: LLMOutcome | None = None
        llm_error: Exception | None = None
        if question.kind == "mcq":
            if isinstance(answer, bool) or not isinstance(answer, int):
                raise InvalidAnswerError("answer must be an option index (integer) for a multiple-choice question.")
            try:
                grade = grade_mcq(question, answer)
            except ChoiceOutOfRangeError as exc:
                raise InvalidAnswerError(str(exc)) from None
            stored_answer = str(answer)
        else:
            if not isinstance(answer, str):
                raise InvalidAnswerError("answer must be text for a short-answer question.")
            text = answer.strip()  # empty is a non-answer: graded 0 by rule, without a model
            if len(text) > MAX_ANSWER_CHARS:
                raise InvalidAnswerError(f"answer is longer than {MAX_ANSWER_CHARS} characters.")
            if not question.references:  # the schema requires one, but it may be blank
                raise NotGradableError(f"Question {question.id!r} has no reference answer.")
            grade, outcome, llm_error = self.grade_short_answer(question, text, user_id)
            stored_answer = text

        with engine.begin() as conn:
            if user_id == principal.uid:
                ensure_user(conn, principal)
            if outcome is not None and outcome.generation is not None:
                log_generation(conn, outcome.generation, request_id)
            elif llm_error is not None and hasattr(llm_error, "attempts"):
                log_failure(conn, llm_error, request_id)  # type: ignore[arg-type]
            done = complete_attempt(
                conn,
                user_id,
                attempt_id,
                question_id=question.id,
                correct=grade.credit,
                is_correct=grade.correct,
                time_seconds=time_seconds,
                score=grade.score,
                verdict=grade.verdict,
                feedback=grade.feedback,
                answer=stored_answer,
                grader=grade.grader,
                grader_version=grade.grader_version,
            )

        log.info(
            "graded",
            extra={
                "user_id": user_id,
                "question_id": question.id,
                "attempt_id": done.attempt_id,
                "grader": grade.grader,
                "grader_version": grade.grader_version,
                "score": grade.score,
                "verdict": grade.verdict,
                "flags": list(grade.flags),
            },
        )
        return {
            "attempt_id": done.attempt_id,
            "user_id": user_id,
            "question_id": question.id,
            "topic_id": done.topic_id,
            "kind": question.kind,
            "correct": grade.correct,
            "score": grade.score,
            "max_score": 10,
            "verdict": grade.verdict,
            "feedback": grade.feedback,
            "grader": grade.grader,
            "grader_version": grade.grader_version,
            "flags": list(grade.flags),
            "mastery": round(done.mastery, 4),
            "counted": done.counted,
            "repeat_of": done.repeat_of,
            "time_seconds": time_seconds,
        }


def _flag(grade: Grade, flag: str) -> Grade:
    from dataclasses import replace

    return replace(grade, flags=(*grade.flags, flag))


def _check_open_attempt(conn: sa.Connection, attempt_id: str, user_id: str, question_id: str) -> None:
    """Fail fast (before grading) on an attempt that cannot be completed by this call."""
    row = get_attempt(conn, attempt_id)
    if row is None:
        raise AttemptNotFoundError("No such attempt.")
    if row["user_id"] != user_id:
        raise AttemptForbiddenError("This attempt belongs to another student.")
    if row["status"] != "predicted":
        raise AttemptCompletedError(f"Attempt {attempt_id} is already completed.")
    if row["question_id"] is not None and row["question_id"] != question_id:
        raise AttemptMismatchError(f"This attempt is for another question: {row['question_id']!r}.")


_service: GradingService | None = None


def get_grading_service() -> GradingService:
    global _service
    if _service is None:
        _service = GradingService()
    return _service
