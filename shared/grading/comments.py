"""Constructive feedback for the graders that cannot write (MCQ, model, similarity, lexical).

Built only from the stored question (reference, explanation, options) and the verdict:
never from the student's text, so nothing a student writes is echoed back or obeyed.
"""

from __future__ import annotations

from shared.grading.contract import Question
from shared.grading.text import content_words


def missing_terms(reference: str, answer: str, limit: int = 4) -> list[str]:
    """Key words of the reference the answer does not use (as they appear in the reference)."""
    have = set(content_words(answer))
    seen: set[str] = set()
    out: list[str] = []
    for word in reference.replace("(", " ").replace(")", " ").split():
        clean = word.strip(".,;:!?'\"").lower()
        stems = content_words(clean)
        if not stems or len(clean) < 4 or stems[0] in have or stems[0] in seen:
            continue
        seen.add(stems[0])
        out.append(clean)
        if len(out) == limit:
            break
    return out


def short_answer_feedback(question: Question, verdict: str, reference: str, answer: str) -> str:
    explanation = f" {question.explanation}" if question.explanation else ""
    if verdict == "correct":
        return f"Correct: your answer covers the key idea.{explanation}"
    missing = missing_terms(reference, answer)
    hint = f" Think about: {', '.join(missing)}." if missing else ""
    if verdict == "partially_correct":
        return f"Partly right, but something is missing or unclear.{hint} A complete answer: {reference}"
    if verdict == "contradictory":
        return f"Your answer contradicts the expected one; check it against this: {reference}{explanation}"
    return f"Not quite.{hint} A good answer: {reference}{explanation}"


def non_answer_feedback(question: Question) -> str:
    """For an answer that makes no attempt ("I don't know", empty): the answer to learn from."""
    explanation = f" {question.explanation}" if question.explanation else ""
    reference = question.references[0] if question.references else ""
    return f"No answer yet, and that is fine: here is one to learn from. {reference}{explanation}".strip()


def mcq_feedback(question: Question, chosen: int, correct: bool) -> str:
    explanation = f" {question.explanation}" if question.explanation else ""
    if correct:
        return f"Correct.{explanation}"
    options = question.options or []
    right = options[question.correct_option] if question.correct_option is not None else "?"
    return f"Not quite: the answer is option {question.correct_option} ({right}).{explanation}"
