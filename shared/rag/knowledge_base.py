"""Loading knowledge nodes into Postgres: sources, chunking, and the idempotent load.

The legacy knowledge base lives in Firestore (or, locally, a JSON file). Each
source node becomes one or more chunks (rows of `knowledge_nodes`), embedded in
batches. A chunk's `content_hash` covers its text, and `embedding_model` names
the space its vector lives in: a re-run embeds only chunks whose text or
encoder changed, which is also what makes a crashed run resumable (every batch
is committed as it completes, so the next run starts where it stopped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from shared.curriculum import content_hash, node_text

MAX_CHUNK_WORDS = 180  # MiniLM reads 256 word pieces at most; ~180 words stays within it
OVERLAP_SENTENCES = 1  # carried into the next chunk so a split thought keeps its context


@dataclass(frozen=True)
class SourceNode:
    """A node as the legacy store has it, normalised."""

    source_id: str
    title: str
    content: str
    topic_id: str | None = None
    kind: str = "explanation"
    difficulty: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    id: str
    source: SourceNode
    index: int
    content: str

    @property
    def hash(self) -> str:
        return content_hash(self.source.title, self.content)


class BadSourceNode(ValueError):
    pass


def normalize_node(doc_id: str, data: dict[str, Any]) -> SourceNode:
    """Accept the field spellings legacy documents use (camelCase, text/body)."""
    content = data.get("content") or data.get("text") or data.get("body")
    title = data.get("title") or data.get("name")
    if not isinstance(content, str) or not content.strip():
        raise BadSourceNode(f"node {doc_id!r} has no content")
    if not isinstance(title, str) or not title.strip():
        title = content.strip().split(".")[0][:80]
    difficulty = data.get("difficulty")
    return SourceNode(
        source_id=str(data.get("id") or doc_id),
        title=title.strip(),
        content=content.strip(),
        topic_id=data.get("topic_id") or data.get("topicId") or data.get("topic"),
        kind=data.get("kind") or data.get("type") or "explanation",
        difficulty=int(difficulty) if isinstance(difficulty, (int, float)) else None,
        metadata={k: v for k, v in data.items() if k in ("tags", "source", "author", "url")},
    )


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(`'\"])")


def chunk_node(node: SourceNode, max_words: int = MAX_CHUNK_WORDS) -> list[Chunk]:
    """Split a long node on sentence boundaries into chunks of at most ~max_words,
    repeating the last sentence of a chunk at the start of the next."""
    if len(node.content.split()) <= max_words:
        return [Chunk(node.source_id, node, 0, node.content)]
    sentences = [s.strip() for s in _SENTENCE.split(node.content) if s.strip()]
    chunks: list[list[str]] = [[]]
    words = 0
    for sentence in sentences:
        n = len(sentence.split())
        if chunks[-1] and words + n > max_words:
            carry = chunks[-1][-OVERLAP_SENTENCES:] if OVERLAP_SENTENCES else []
            chunks.append(list(carry))
            words = sum(len(s.split()) for s in carry)
        chunks[-1].append(sentence)
        words += n
    return [
        Chunk(node.source_id if i == 0 else f"{node.source_id}#{i}", node, i, " ".join(parts))
        for i, parts in enumerate(chunks)
    ]


# --- sources -------------------------------------------------------------------------
SourceItem = SourceNode | BadSourceNode


def _normalized(doc_id: str, data: Any) -> SourceItem:
    """A bad node is yielded as its error, so one broken document never stops the load."""
    if not isinstance(data, dict):
        return BadSourceNode(f"node {doc_id!r} is not an object")
    try:
        return normalize_node(doc_id, data)
    except (BadSourceNode, ValueError, TypeError) as exc:
        return BadSourceNode(str(exc))


def nodes_from_json(path: Path) -> Iterator[SourceItem]:
    """A JSON file: a list of nodes, or {"nodes": [...]} (the course file format)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    items = data.get("nodes", []) if isinstance(data, dict) else data
    for i, item in enumerate(items):
        yield _normalized(str(item.get("id", i)) if isinstance(item, dict) else str(i), item)


def nodes_from_firestore(collection: str, *, project: str, client: Any = None) -> Iterator[SourceItem]:
    """Stream a Firestore collection (FIRESTORE_EMULATOR_HOST selects the emulator)."""
    from google.cloud import firestore

    db = client or firestore.Client(project=project)
    for doc in db.collection(collection).stream():
        yield _normalized(doc.id, doc.to_dict() or {})


# --- the load ------------------------------------------------------------------------
@dataclass
class MigrationSummary:
    source_nodes: int = 0
    chunks: int = 0
    embedded: int = 0
    unchanged: int = 0
    stale_chunks_removed: int = 0
    unknown_topic: int = 0
    bad_nodes: list[str] = field(default_factory=list)
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


Embedder = Callable[[Sequence[str]], np.ndarray]
Progress = Callable[[int], None]

UPSERT_CHUNK = sa.text(
    """INSERT INTO knowledge_nodes (id, source_id, chunk_index, topic_id, title, content, kind,
                                    difficulty, content_hash, embedding, embedding_model, metadata)
       VALUES (:id, :source_id, :chunk_index, :topic_id, :title, :content, :kind, :difficulty,
               :content_hash, :embedding, :embedding_model, CAST(:metadata AS jsonb))
       ON CONFLICT (id) DO UPDATE SET source_id = EXCLUDED.source_id,
           chunk_index = EXCLUDED.chunk_index, topic_id = EXCLUDED.topic_id, title = EXCLUDED.title,
           content = EXCLUDED.content, kind = EXCLUDED.kind, difficulty = EXCLUDED.difficulty,
           content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding,
           embedding_model = EXCLUDED.embedding_model, metadata = EXCLUDED.metadata,
           updated_at = now()"""
)


def migrate_nodes(
    engine: sa.Engine,
    nodes: Iterable[SourceItem],
    embed: Embedder,
    embedding_model: str,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> MigrationSummary:
    """Chunk, embed what changed, and upsert, one committed batch at a time."""
    summary = MigrationSummary()
    with engine.connect() as conn:
        topics = set(conn.execute(sa.text("SELECT id FROM topics")).scalars())
        known = {
            row.id: (row.content_hash, row.embedding_model)
            for row in conn.execute(
                sa.text("SELECT id, content_hash, embedding_model FROM knowledge_nodes WHERE embedding IS NOT NULL")
            )
        }
    pending: list[Chunk] = []
    chunk_counts: dict[str, int] = {}

    def flush() -> None:
        if not pending:
            return
        vectors = np.asarray(embed([node_text(c.source.title, c.content) for c in pending]), dtype=np.float32)
        with engine.begin() as conn:
            for chunk, vector in zip(pending, vectors, strict=True):
                topic = chunk.source.topic_id if chunk.source.topic_id in topics else None
                conn.execute(
                    UPSERT_CHUNK,
                    {
                        "id": chunk.id,
                        "source_id": chunk.source.source_id,
                        "chunk_index": chunk.index,
                        "topic_id": topic,
                        "title": chunk.source.title,
                        "content": chunk.content,
                        "kind": chunk.source.kind,
                        "difficulty": chunk.source.difficulty,
                        "content_hash": chunk.hash,
                        "embedding": vector,
                        "embedding_model": embedding_model,
                        "metadata": json.dumps(chunk.source.metadata),
                    },
                )
        summary.embedded += len(pending)
        summary.batches += 1
        if progress:
            progress(len(pending))
        pending.clear()

    for node in nodes:
        if isinstance(node, BadSourceNode):
            summary.bad_nodes.append(str(node))
            continue
        summary.source_nodes += 1
        if node.topic_id and node.topic_id not in topics:
            summary.unknown_topic += 1
        chunks = chunk_node(node)
        chunk_counts[node.source_id] = len(chunks)
        for chunk in chunks:
            summary.chunks += 1
            if known.get(chunk.id) == (chunk.hash, embedding_model):
                summary.unchanged += 1
                if progress:
                    progress(1)
                continue
            pending.append(chunk)
            if len(pending) >= batch_size:
                flush()
    flush()
    summary.stale_chunks_removed = _remove_stale_chunks(engine, chunk_counts)
    return summary


def _remove_stale_chunks(engine: sa.Engine, chunk_counts: dict[str, int]) -> int:
    """A node that got shorter leaves chunks past its new end; they must not be retrieved."""
    if not chunk_counts:
        return 0
    with engine.begin() as conn:
        result = conn.execute(
            sa.text(
                """DELETE FROM knowledge_nodes n
                    USING unnest(CAST(:ids AS text[]), CAST(:counts AS int[])) AS s(source_id, n_chunks)
                    WHERE n.source_id = s.source_id AND n.chunk_index >= s.n_chunks"""
            ),
            {"ids": list(chunk_counts), "counts": list(chunk_counts.values())},
        )
        return result.rowcount or 0
