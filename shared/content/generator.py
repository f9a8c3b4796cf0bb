"""Explanations and quizzes for one topic, adapted to the student's level and style.

Level comes from mastery (BKT) unless the request says otherwise; learning style
from the student's profile or the request. Explanations stream like chat replies;
quizzes come back as a validated `Quiz` of exactly the number of questions asked for
(the router repairs or retries a malformed or short answer and never passes one
through). An LLM writes the quiz when one is configured; otherwise it is drawn from the
topic's question bank, and a request the bank cannot fill is refused (422) with the
limit, never silently shortened. The response says which (`source`). An optional
`focus` narrows both the material the writer sees and the bank questions drawn.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sqlalchemy as sa

from shared.content.quiz import LEXEMES_ORED, Quiz, bank_quiz, quiz_of
from shared.curriculum import TopicNotFoundError
from shared.errors import InvalidError, UpstreamError
from shared.identity import Principal
from shared.llm.types import Generation, Grounding, Message, Prompt, Source
from shared.mastery.bkt import level as mastery_level
from shared.mastery.store import student_on_topic
from shared.personalisation import LEVEL_HINTS, STYLE_HINTS, Level, Style, grade_hint
from shared.users import ensure_user

_BY_MASTERY = {"low": "beginner", "medium": "intermediate", "high": "advanced"}
_DIFFICULTY = {"beginner": 1, "intermediate": 2, "advanced": 3}


@dataclass
class ContentRequest:
    topic_id: str
    kind: Literal["explanation", "quiz"]
    level: Level | None = None
    style: Style | None = None
    questions: int = 3
    focus: str | None = None  # an optional sub-question ("the else clause of loops")


@dataclass
class Plan:
    topic_id: str
    topic_title: str
    level: Level
    style: Style | None
    mastery: float | None
    sources: list[dict[str, Any]]
    prompt: Prompt
    questions: int = 3
    focus: str | None = None
    focus_terms: list[str] = field(default_factory=list)
    bank: dict[str, Any] | None = None  # quizzes: what the question bank can give (maybe fewer)


def focus_terms(conn: sa.Connection, focus: str | None, topic_title: str) -> list[str]:
    """The focus as full-text lexemes, less the topic's own name ("the else clause of
    loops" on Loops is about `els` and `claus`): empty when the focus is the topic itself."""
    if not focus:
        return []
    focus_lexemes, title_lexemes = conn.execute(
        sa.text("SELECT tsvector_to_array(to_tsvector('english', :f)), tsvector_to_array(to_tsvector('english', :t))"),
        {"f": focus, "t": topic_title},
    ).one()
    return sorted(set(focus_lexemes) - set(title_lexemes))


def _topic_nodes(
    conn: sa.Connection, topic_id: str, difficulty: int, k: int = 4, terms: list[str] | None = None
) -> list[dict[str, Any]]:
    """The topic's nodes nearest the student's level, explanations and examples first;
    with focus terms, the nodes that mention the focus before all others."""
    rows = conn.execute(
        sa.text(
            f"""SELECT id, title, content FROM knowledge_nodes
                WHERE topic_id = :t
                ORDER BY CASE WHEN :focused THEN ts_rank_cd(search_tsv, {LEXEMES_ORED}) ELSE 0 END DESC,
                         (kind IN ('explanation', 'example', 'summary')) DESC,
                         abs(COALESCE(difficulty, 2) - :d), chunk_index, id
                LIMIT :k"""
        ),
        {"t": topic_id, "d": difficulty, "k": k, "focused": bool(terms), "focus_terms": " ".join(terms or [])},
    ).all()
    return [{"node_id": r.id, "title": r.title, "content": r.content} for r in rows]


def plan(conn: sa.Connection, user: Principal, req: ContentRequest) -> Plan:
    ensure_user(conn, user)
    title = conn.execute(sa.text("SELECT title FROM topics WHERE id = :t"), {"t": req.topic_id}).scalar()
    if title is None:
        raise TopicNotFoundError("No such topic.")
    student = student_on_topic(conn, user.uid, req.topic_id)
    mastery, profile, measured = student.mastery, student.profile, student.measured
    # The request, then measured mastery on the topic, then the level the student stated,
    # then the topic's prior (evidence beats self-assessment, which beats a default).
    stated = profile.level if profile is not None else None
    by_mastery = _BY_MASTERY[mastery_level(mastery if mastery is not None else 0.0)]
    lvl: Level = req.level or (by_mastery if measured else stated or by_mastery)  # type: ignore[assignment]
    wanted = req.style or (profile.learning_style if profile is not None else None)
    style: Style | None = wanted if wanted in STYLE_HINTS else None
    terms = focus_terms(conn, req.focus, title)
    sources = _topic_nodes(conn, req.topic_id, _DIFFICULTY[lvl], terms=terms)
    material = "\n\n".join(f"[{s['title']}] (node {s['node_id']})\n{s['content']}" for s in sources)
    hints = [LEVEL_HINTS[lvl]] + ([STYLE_HINTS[style]] if style in STYLE_HINTS else [])
    grade = grade_hint(profile.grade if profile is not None else None)
    if grade:
        hints.append(grade)
    focus = f" Focus on: {req.focus}." if req.focus else ""
    if req.kind == "explanation":
        task_text = f"Write an explanation of {title} for this student.{focus}"
    else:
        task_text = (
            f"Write a quiz of {req.questions} multiple-choice questions on {title}.{focus} Each question "
            "has 4 options, exactly one correct; distractors must be plausible mistakes a student "
            "makes, not silly answers; explain the correct answer briefly."
        )
    system = "\n\n".join(
        [
            "You are cognitive-core, a tutor writing study material from the course material below only.",
            *hints,
            f"Course material:\n{material}" if material else "No course material exists for this topic yet.",
        ]
    )
    grounding = Grounding(
        intent="concept_explanation" if req.kind == "explanation" else "practice_quiz",
        query=task_text,
        sources=tuple(Source(s["node_id"], s["title"], s["content"], req.topic_id) for s in sources),
        mastery=mastery,
        topic_title=title,
    )
    bank = None
    if req.kind == "quiz":
        seed = int(time.time()) // 3600
        bank = bank_quiz(conn, req.topic_id, req.questions, _DIFFICULTY[lvl], seed=seed, focus_terms=terms)
    prompt = Prompt(
        system=system, messages=(Message("user", task_text),), grounding=grounding, temperature=0.5, user_id=user.uid
    )
    return Plan(req.topic_id, title, lvl, style, mastery, sources, prompt, req.questions, req.focus, terms, bank)


def describe(plan_: Plan) -> dict[str, Any]:
    return {
        "topic_id": plan_.topic_id,
        "topic_title": plan_.topic_title,
        "level": plan_.level,
        "style": plan_.style,
        "mastery": plan_.mastery,
        "focus": plan_.focus,
        "sources": [{"node_id": s["node_id"], "title": s["title"]} for s in plan_.sources],
    }


def bank_size(plan_: Plan) -> int:
    return 0 if plan_.bank is None else len(plan_.bank["questions"])


def generate_quiz(router: Any, plan_: Plan) -> tuple[Quiz, Generation, str]:
    """The quiz, its generation, and where it came from: "generated" (an LLM wrote it)
    or "question_bank" (drawn from the stored questions).

    Exactly `plan_.questions` questions or an error. The offline provider (the router's
    last resort) may only hand out the bank quiz when the bank fills the request; when no
    LLM is configured at all and it cannot, the request is refused up front (422).
    """
    wanted = plan_.questions
    bank_fills = bank_size(plan_) >= wanted
    writers = [name for name in getattr(router, "order", []) if name != "offline"]
    if not writers and not bank_fills:
        raise quiz_too_long(plan_)
    prompt = replace(plan_.prompt, offline_json=plan_.bank if bank_fills else None)
    generation = router.generate_json("quiz", prompt, quiz_of(wanted))
    quiz = generation.parsed
    if not isinstance(quiz, Quiz):  # the router guarantees this; a wrong type is a bug, not input
        raise QuizGenerationError("The quiz could not be generated.")
    return quiz, generation, "question_bank" if generation.provider == "offline" else "generated"


class QuizGenerationError(UpstreamError):
    code = "bad_generation"


class QuizUnavailableError(InvalidError):
    """No model can write the quiz and the bank cannot fill it: the request asks too much."""

    code = "quiz_unavailable"


def quiz_too_long(plan_: Plan) -> QuizUnavailableError:
    """422: no model can write the quiz and the bank holds fewer questions than asked for."""
    have = bank_size(plan_)
    about = " matching that focus" if plan_.focus_terms else ""
    if have:
        limit = f"only {have} multiple-choice question{'s' if have != 1 else ''}{about}"
        advice = f"ask for at most {have}"
    else:
        limit = f"no multiple-choice question{about}"
        advice = "try without a focus" if plan_.focus_terms else "try another topic"
    return QuizUnavailableError(
        f"No AI model is connected to write a quiz, and the question bank has {limit} on "
        f"{plan_.topic_title}: {advice}.",
        details={"requested": plan_.questions, "available": have, "source": "question_bank"},
    )


def stream_explanation(router: Any, plan_: Plan) -> Iterator[str | Generation | Any]:
    yield from router.stream("explanation", plan_.prompt)
