"""Multiple choice: graded instantly and deterministically from the stored question."""

from __future__ import annotations

from shared.grading.comments import mcq_feedback
from shared.grading.contract import Grade, Question

MCQ_VERSION = "mcq-1"


class ChoiceOutOfRangeError(ValueError):
    """The chosen option index does not exist for this question (HTTP 422)."""


def grade_mcq(question: Question, chosen: int) -> Grade:
    options = question.options or []
    if not 0 <= chosen < len(options):
        raise ChoiceOutOfRangeError(
            f"answer must be an option index from 0 to {len(options) - 1} for question {question.id}."
        )
    correct = chosen == question.correct_option
    return Grade(
        score=10.0 if correct else 0.0,
        verdict="correct" if correct else "incorrect",
        feedback=mcq_feedback(question, chosen, correct),
        grader="mcq",
        grader_version=MCQ_VERSION,
        details={"chosen": chosen, "correct_option": question.correct_option},
    )
