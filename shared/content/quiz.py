"""The quiz contract, and a quiz from the question bank for when no LLM can write one."""

from __future__ import annotations

import random
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, create_model, model_validator


class QuizQuestion(BaseModel):
    question: str = Field(min_length=5, max_length=1000)
    options: list[str] = Field(min_length=3, max_length=6)
    answer: int = Field(ge=0, description="index of the correct option")
    explanation: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _answer_in_range(self) -> QuizQuestion:
        if self.answer >= len(self.options):
            raise ValueError(f"answer {self.answer} is not an index into {len(self.options)} options")
        if len({o.strip().lower() for o in self.options}) != len(self.options):
            raise ValueError("options must be distinct")
        return self


class Quiz(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    questions: list[QuizQuestion] = Field(min_length=1, max_length=20)


@lru_cache(maxsize=32)
def quiz_of(n: int) -> type[Quiz]:
    """The quiz contract with exactly `n` questions: what the router validates a written
    quiz against, so a model that writes fewer (or more) is asked again, never passed on."""
    return create_model(f"QuizOf{n}", __base__=Quiz, questions=(list[QuizQuestion], Field(min_length=n, max_length=n)))


# A tsquery of the given lexemes ORed (lexemes are already normalised: 'simple' keeps them).
LEXEMES_ORED = "CAST(replace(CAST(plainto_tsquery('simple', :focus_terms) AS text), '&', '|') AS tsquery)"


def bank_quiz(
    conn: sa.Connection,
    topic_id: str,
    n: int,
    difficulty: int | None,
    seed: int,
    focus_terms: list[str] | None = None,
) -> dict[str, Any] | None:
    """A quiz assembled from the topic's stored multiple-choice questions, nearest the
    wanted difficulty first: what the offline mode may return, since it cannot write one.

    With `focus_terms` (lexemes, see `generator.focus_terms`) only the questions whose
    prompt, options or explanation mention the focus are drawn, the best matches first.
    The quiz holds at most `n` questions, fewer when the bank has fewer: the caller
    decides whether that is enough. None when nothing matches.
    """
    focused = bool(focus_terms)
    rows = conn.execute(
        sa.text(
            f"""WITH q AS (
                   SELECT q.*, to_tsvector('english', q.prompt || ' ' || COALESCE(q.explanation, '') || ' '
                                                      || COALESCE(q.options::text, '')) AS tsv
                     FROM questions q
                    WHERE q.topic_id = :t AND q.kind = 'mcq'
               )
               SELECT q.prompt, q.options, q.correct_option, q.explanation, q.difficulty, t.title,
                      CASE WHEN :focused THEN ts_rank_cd(q.tsv, {LEXEMES_ORED}) ELSE 0 END AS focus_rank
                 FROM q JOIN topics t ON t.id = q.topic_id
                WHERE NOT :focused OR q.tsv @@ {LEXEMES_ORED}
                ORDER BY focus_rank DESC, abs(q.difficulty - :d), q.id"""
        ),
        {"t": topic_id, "d": difficulty or 2, "focused": focused, "focus_terms": " ".join(focus_terms or [])},
    ).all()
    if not rows:
        return None
    picked = list(rows[:n])
    random.Random(seed).shuffle(picked)
    return {
        "title": f"Practice quiz: {rows[0].title}",
        "questions": [
            {
                "question": r.prompt,
                "options": list(r.options),
                "answer": r.correct_option,
                "explanation": r.explanation or "This is the answer stored with the question.",
            }
            for r in picked
        ],
    }
