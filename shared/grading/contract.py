"""The one contract every grader answers with, and what a short-answer grader is given."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class GraderUnavailableError(RuntimeError):
    """This grader cannot answer now (no model, no encoder, LLM down); try the next one."""


@dataclass(frozen=True)
class Question:
    """What grading needs from a row of `questions`."""

    id: str
    topic_id: str
    kind: str  # "mcq" | "short_answer"
    prompt: str
    difficulty: int
    options: list[str] | None = None
    correct_option: int | None = None
    references: tuple[str, ...] = ()
    rubric: str | None = None
    explanation: str | None = None
    max_score: int = 10


@dataclass(frozen=True)
class Grade:
    """A graded answer. `score` is 0-10 whatever the grader; `grader` names who answered."""

    score: float
    verdict: str  # correct | partially_correct | incorrect | contradictory
    feedback: str
    grader: str  # mcq | llm | model | embedding | lexical
    grader_version: str
    flags: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    @property
    def credit(self) -> float:
        """The evidence mastery receives, in [0, 1]."""
        return round(self.score / 10.0, 4)


class ShortAnswerGrader(Protocol):
    """Grades free text against the question's reference answer(s).

    Raises GraderUnavailableError when it cannot answer; never lets the answer text
    change how it grades (the text is data)."""

    name: str

    def grade(self, question: Question, answer: str) -> Grade: ...
