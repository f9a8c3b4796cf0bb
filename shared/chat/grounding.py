"""What a turn is about: the session's topic, kept unless the student clearly moves on,
and the course material relevant enough to cite.

A conversation has a topic. Re-deciding it from each message's best retrieval hit made
sessions drift: a follow-up about variables whose best hit happened to sit in
Conditionals moved the session there (and cited Newton's third law). So the topic is
sticky (hysteresis): it changes only when the student names another topic, or when
that topic's material fits the message clearly better than the session topic's does
(by `SWITCH_MARGIN` of cosine similarity, and well enough to be grounded at all).

Sources are filtered by relevance to the question: a hit is cited only when its cosine
similarity to the question reaches `MIN_SIMILARITY` and lies within `RELATIVE_MARGIN`
of the best hit, and only from the turn's topic. Without a query vector (the encoder is
down) only the ranking is known: the session topic is kept unless a topic is named.

`GROUNDED_SIMILARITY` is the similarity at which a message counts as being about the
course. It is calibrated on real data by `benchmarks/calibrate_chat_grounding.py`: the
level that at most 1% of the CLINC150 validation queries (3,100 real queries to a
voice assistant, none about the course) reach against the demo course.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from shared.rag.retrieval import RetrievedNode

MIN_SIMILARITY = 0.25  # below this a node is not about the question, whatever its rank (p95 of off-course queries)
RELATIVE_MARGIN = 0.15  # a cited node is at most this much less similar than the best one
GROUNDED_SIMILARITY = 0.35  # at or above: the message is about the course (calibrated: p99 = 0.346)
SWITCH_MARGIN = 0.10  # another topic must beat the session topic's best hit by this much
TUTORING_INTENTS = ("concept_explanation", "debugging_help", "interview_practice", "practice_quiz", "review_summary")
KNOWN_WORD_SHARE = 0.6  # below: the intent model cannot read the message (calibrated, see above)


@dataclass(frozen=True)
class TopicDecision:
    topic_id: str | None
    reason: str  # requested | named | kept | switched | inferred | none


@dataclass(frozen=True)
class NamedTopic:
    topic_id: str
    fully: bool  # every word of the title is in the message ("list comprehensions" names Lists)


def named_topics(conn: sa.Connection, terms: str) -> dict[str, NamedTopic]:
    """Topics whose title words occur in the message (stemmed, as full text sees them).

    `fully` needs every word of the title: the strict test for moving to a topic ("what
    types of loops are there?" names Loops, not Variables and types). Any word is enough
    to count as naming the session's own topic when no other topic is fully named: "is
    the energy conserved?" stays in Work and energy. Titles are stemmed once, when
    written (`topics.title_lexemes`, migration 0010), not for every message.
    """
    if not terms.strip():
        return {}
    rows = conn.execute(
        sa.text(
            """WITH m AS (SELECT tsvector_to_array(to_tsvector('english', :terms)) AS lx),
                    t AS (SELECT id, title_lexemes AS lx FROM topics)
               SELECT t.id, t.lx <@ m.lx AS fully
                 FROM t, m
                WHERE t.lx && m.lx"""
        ),
        {"terms": terms},
    ).all()
    return {r.id: NamedTopic(r.id, bool(r.fully)) for r in rows}


def best_by_topic(hits: Iterable[RetrievedNode]) -> dict[str, float]:
    """Each topic's best cosine similarity among the hits."""
    best: dict[str, float] = {}
    for h in hits:
        if h.topic_id is not None and h.similarity is not None:
            best[h.topic_id] = max(best.get(h.topic_id, -1.0), h.similarity)
    return best


def grounded(hits: Sequence[RetrievedNode]) -> bool:
    """The message is about the course: some node is as close as course questions get."""
    return any(h.similarity is not None and h.similarity >= GROUNDED_SIMILARITY for h in hits)


def measurable(hits: Sequence[RetrievedNode], have_query_vector: bool) -> bool:
    """Whether similarity to the course can be judged: a query vector, and a knowledge
    base with vectors (or nothing near the message at all)."""
    return have_query_vector and (not hits or any(h.similarity is not None for h in hits))


def choose_topic(
    session_topic: str | None,
    hits: Sequence[RetrievedNode],
    named: dict[str, NamedTopic],
) -> TopicDecision:
    """The turn's topic from the session's, the topics the message names, and the hits."""
    by_topic = best_by_topic(hits)
    session_named = named.get(session_topic) if session_topic is not None else None
    if session_named is not None and session_named.fully:
        return TopicDecision(session_topic, "kept")
    fully_named = [t for t, n in named.items() if n.fully]
    if fully_named:
        # The student named another topic; with several, the one whose material fits best.
        return TopicDecision(max(fully_named, key=lambda t: by_topic.get(t, -1.0)), "named")
    if session_named is not None:
        return TopicDecision(session_topic, "kept")
    if not by_topic:
        if session_topic is not None:
            return TopicDecision(session_topic, "kept")
        first = next((h.topic_id for h in hits if h.topic_id), None)  # no vectors: the ranking decides
        return TopicDecision(first, "inferred" if first else "none")
    best_topic = max(by_topic, key=lambda t: by_topic[t])
    best = by_topic[best_topic]
    if session_topic is None:
        # A session's first topic needs a grounded message: a weak best hit is noise.
        if best >= GROUNDED_SIMILARITY:
            return TopicDecision(best_topic, "inferred")
        return TopicDecision(None, "none")
    current = by_topic.get(session_topic, -1.0)
    if best_topic != session_topic and best >= GROUNDED_SIMILARITY and best >= current + SWITCH_MARGIN:
        return TopicDecision(best_topic, "switched")
    return TopicDecision(session_topic, "kept")


def relevant_sources(hits: Sequence[RetrievedNode], topic_id: str | None, k: int) -> list[RetrievedNode]:
    """The hits worth citing: the turn's topic only (when it has one), similar enough to
    the question, and not far behind the best of them. Without a topic, material from
    anywhere in the course must be grounded to be cited. Rank order is kept."""
    pool = [h for h in hits if topic_id is None or h.topic_id == topic_id]
    scored = [h.similarity for h in pool if h.similarity is not None]
    if not scored:
        return pool[:k]  # no vectors: only the full-text ranking is known
    absolute = MIN_SIMILARITY if topic_id is not None else GROUNDED_SIMILARITY
    floor = max(absolute, max(scored) - RELATIVE_MARGIN)
    return [h for h in pool if h.similarity is not None and h.similarity >= floor][:k]


def save_topic(conn: sa.Connection, session_id: object, topic_id: str) -> None:
    conn.execute(
        sa.text("UPDATE chat_sessions SET topic_id = :t WHERE id = :id AND topic_id IS DISTINCT FROM :t"),
        {"t": topic_id, "id": session_id},
    )
