"""Courses, topics, knowledge nodes and questions: loading and listing.

A course file (JSON: courses with topics, nodes, questions) is the portable way
to bring curriculum in; the local stack loads the demo course with it. Loading
is an idempotent upsert keyed by ids, and a node's `content_hash` tells whether
its embedding is still valid, so re-loading never re-embeds unchanged text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from shared.errors import NotFoundError
from shared.knowledge_text import content_hash, node_text

Embedder = Callable[[Sequence[str]], np.ndarray]


@dataclass
class LoadSummary:
    courses: int = 0
    topics: int = 0
    nodes_new_or_changed: int = 0
    nodes_unchanged: int = 0
    questions: int = 0
    embedded: int = 0


def load_course_file(
    conn: sa.Connection,
    path: Path,
    *,
    embed: Embedder | None = None,
    embedding_model: str | None = None,
) -> LoadSummary:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return load_course_data(conn, data, embed=embed, embedding_model=embedding_model)


def load_course_data(
    conn: sa.Connection,
    data: dict[str, Any],
    *,
    embed: Embedder | None = None,
    embedding_model: str | None = None,
) -> LoadSummary:
    summary = LoadSummary()
    for course in data.get("courses", []):
        conn.execute(
            sa.text(
                """INSERT INTO courses (id, title, description) VALUES (:id, :title, :description)
                   ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title,
                                                  description = EXCLUDED.description"""
            ),
            {"id": course["id"], "title": course["title"], "description": course.get("description", "")},
        )
        summary.courses += 1
        for position, topic in enumerate(course.get("topics", [])):
            conn.execute(
                sa.text(
                    """INSERT INTO topics (id, course_id, title, description, position, prerequisites)
                       VALUES (:id, :course_id, :title, :description, :position, :prerequisites)
                       ON CONFLICT (id) DO UPDATE SET course_id = EXCLUDED.course_id,
                           title = EXCLUDED.title, description = EXCLUDED.description,
                           position = EXCLUDED.position, prerequisites = EXCLUDED.prerequisites"""
                ),
                {
                    "id": topic["id"],
                    "course_id": course["id"],
                    "title": topic["title"],
                    "description": topic.get("description", ""),
                    "position": position,
                    "prerequisites": topic.get("prerequisites", []),
                },
            )
            summary.topics += 1

    existing: dict[str, str] = dict(
        conn.execute(sa.text("SELECT id, content_hash FROM knowledge_nodes WHERE embedding IS NOT NULL")).all()
    )
    changed: list[dict[str, Any]] = []
    for node in data.get("nodes", []):
        digest = content_hash(node["title"], node["content"])
        if existing.get(node["id"]) == digest:
            summary.nodes_unchanged += 1
            continue
        changed.append({**node, "content_hash": digest})

    vectors: np.ndarray | None = None
    if embed is not None and changed:
        vectors = np.asarray(embed([node_text(n["title"], n["content"]) for n in changed]))
    for i, node in enumerate(changed):
        conn.execute(
            sa.text(
                """INSERT INTO knowledge_nodes (id, source_id, chunk_index, topic_id, title, content,
                                                kind, difficulty, content_hash, embedding,
                                                embedding_model, metadata)
                   VALUES (:id, :id, 0, :topic_id, :title, :content, :kind, :difficulty,
                           :content_hash, :embedding, :embedding_model, CAST(:metadata AS jsonb))
                   ON CONFLICT (id) DO UPDATE SET topic_id = EXCLUDED.topic_id,
                       title = EXCLUDED.title, content = EXCLUDED.content, kind = EXCLUDED.kind,
                       difficulty = EXCLUDED.difficulty, content_hash = EXCLUDED.content_hash,
                       embedding = EXCLUDED.embedding, embedding_model = EXCLUDED.embedding_model,
                       metadata = EXCLUDED.metadata, updated_at = now()"""
            ),
            {
                "id": node["id"],
                "topic_id": node.get("topic_id"),
                "title": node["title"],
                "content": node["content"],
                "kind": node.get("kind", "explanation"),
                "difficulty": node.get("difficulty"),
                "content_hash": node["content_hash"],
                "embedding": None if vectors is None else vectors[i].astype(np.float32),
                "embedding_model": None if vectors is None else embedding_model,
                "metadata": json.dumps(node.get("metadata", {})),
            },
        )
        summary.nodes_new_or_changed += 1
    summary.embedded = 0 if vectors is None else len(changed)

    for q in data.get("questions", []):
        conn.execute(
            sa.text(
                """INSERT INTO questions (id, topic_id, kind, prompt, options, correct_option,
                                         reference_answer, rubric, explanation, difficulty)
                   VALUES (:id, :topic_id, :kind, :prompt, CAST(:options AS jsonb), :correct_option,
                           :reference_answer, :rubric, :explanation, :difficulty)
                   ON CONFLICT (id) DO UPDATE SET topic_id = EXCLUDED.topic_id,
                       kind = EXCLUDED.kind, prompt = EXCLUDED.prompt, options = EXCLUDED.options,
                       correct_option = EXCLUDED.correct_option,
                       reference_answer = EXCLUDED.reference_answer, rubric = EXCLUDED.rubric,
                       explanation = EXCLUDED.explanation, difficulty = EXCLUDED.difficulty"""
            ),
            {
                "id": q["id"],
                "topic_id": q["topic_id"],
                "kind": q["kind"],
                "prompt": q["prompt"],
                "options": json.dumps(q["options"]) if q.get("options") is not None else None,
                "correct_option": q.get("correct_option"),
                "reference_answer": q.get("reference_answer"),
                "rubric": q.get("rubric"),
                "explanation": q.get("explanation"),
                "difficulty": q.get("difficulty", 2),
            },
        )
        summary.questions += 1
    return summary


def list_topics(conn: sa.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        sa.text(
            """SELECT t.id, t.course_id, c.title AS course_title, t.title, t.description,
                      t.prerequisites,
                      (SELECT count(*) FROM knowledge_nodes n WHERE n.topic_id = t.id) AS nodes,
                      (SELECT count(*) FROM questions q WHERE q.topic_id = t.id) AS questions
                 FROM topics t JOIN courses c ON c.id = t.course_id
                ORDER BY c.id, t.position"""
        )
    ).mappings()
    return [dict(r) for r in rows]


class TopicNotFoundError(NotFoundError):
    """No topic with this id."""


class QuestionNotFoundError(NotFoundError):
    """No question with this id."""


def topic_exists(conn: sa.Connection, topic_id: str) -> bool:
    return conn.execute(sa.text("SELECT 1 FROM topics WHERE id = :id"), {"id": topic_id}).first() is not None


#: every column of a question: for graders and attempts, never for a student's eyes
_ALL_QUESTION_COLUMNS = (
    "id, topic_id, kind, prompt, options, correct_option, reference_answer, rubric, explanation, difficulty, max_score"
)


def question_by_id(conn: sa.Connection, question_id: str) -> dict[str, Any] | None:
    """One question with its answer key and references (the one query that reads them)."""
    row = (
        conn.execute(sa.text(f"SELECT {_ALL_QUESTION_COLUMNS} FROM questions WHERE id = :id"), {"id": question_id})
        .mappings()
        .first()
    )
    return dict(row) if row else None


#: what a student may see of a question. The answer key (`correct_option`), the
#: reference answers, the rubric and the explanation (which names the right answer)
#: are never selected, so no caller can leak them by accident.
_PUBLIC_QUESTION_COLUMNS = "id, topic_id, kind, prompt, options, difficulty, max_score"


def list_questions(
    conn: sa.Connection, topic_id: str, *, difficulty: int | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """A topic's questions as a student sees them: text, kind, MCQ options (no key),
    difficulty and maximum score, easiest first. Raises TopicNotFoundError."""
    if not topic_exists(conn, topic_id):
        raise TopicNotFoundError("No such topic.")
    rows = conn.execute(
        sa.text(
            f"""SELECT {_PUBLIC_QUESTION_COLUMNS} FROM questions
                 WHERE topic_id = :topic_id AND (CAST(:difficulty AS smallint) IS NULL
                                                 OR difficulty = CAST(:difficulty AS smallint))
                 ORDER BY difficulty, id
                 LIMIT :limit"""
        ),
        {"topic_id": topic_id, "difficulty": difficulty, "limit": int(limit)},
    ).mappings()
    return [
        {
            "id": r["id"],
            "topic_id": r["topic_id"],
            "kind": r["kind"],
            "prompt": r["prompt"],
            "options": list(r["options"]) if r["kind"] == "mcq" and r["options"] is not None else None,
            "difficulty": int(r["difficulty"]),
            "max_score": int(r["max_score"]),
        }
        for r in rows
    ]
