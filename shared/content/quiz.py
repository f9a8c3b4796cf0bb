"""The quiz contract, and a quiz from the question bank for when no LLM can write one."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, Field, model_validator


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


def bank_quiz(conn: sa.Connection, topic_id: str, n: int, difficulty: int | None, seed: int) -> dict[str, Any] | None:
    """A quiz assembled from the topic's stored multiple-choice questions, nearest the
    wanted difficulty first: what the offline mode may return, since it cannot write one."""
    rows = conn.execute(
        sa.text(
            """SELECT q.prompt, q.options, q.correct_option, q.explanation, q.difficulty, t.title
                 FROM questions q JOIN topics t ON t.id = q.topic_id
                WHERE q.topic_id = :t AND q.kind = 'mcq'
                ORDER BY abs(q.difficulty - :d), q.id"""
        ),
        {"t": topic_id, "d": difficulty or 2},
    ).all()
    if not rows:
        return None
    picked = rows[:n]
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
