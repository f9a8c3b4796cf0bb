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
import struct
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from shared.knowledge_text import content_hash, node_text
from shared.rag.term_stats import refresh_term_stats

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
    indexes_built: list[str] = field(default_factory=list)
    write_seconds: float = 0.0  # COPY + upsert (the encoder's time excluded)
    index_seconds: float = 0.0  # building indexes dropped for a bulk load
    terms: int | None = None  # lexemes counted for full text (None: nothing changed, not refreshed)
    terms_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        for key in ("write_seconds", "index_seconds", "terms_seconds"):
            out[key] = round(out[key], 2)
        return out


Embedder = Callable[[Sequence[str]], np.ndarray]
Progress = Callable[[int], None]

# The load writes each batch with one binary COPY into a temporary table and one
# INSERT ... SELECT ... ON CONFLICT from it: two statements per batch instead of one per
# row, vectors sent as pgvector's binary form instead of ~4 KB of decimal text each.
_STAGING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "text"),
    ("source_id", "text"),
    ("chunk_index", "int4"),
    ("topic_id", "text"),
    ("title", "text"),
    ("content", "text"),
    ("kind", "text"),
    ("difficulty", "int2"),
    ("content_hash", "text"),
    ("embedding", "vector"),
    ("embedding_model", "text"),
    ("metadata", "jsonb"),
)
_COLUMN_NAMES = ", ".join(name for name, _ in _STAGING_COLUMNS)
CREATE_STAGING = (
    "CREATE TEMP TABLE knowledge_nodes_load ("
    + ", ".join(f"{name} {kind}" for name, kind in _STAGING_COLUMNS)
    + ") ON COMMIT DROP"
)
COPY_STAGING = f"COPY knowledge_nodes_load ({_COLUMN_NAMES}) FROM STDIN WITH (FORMAT binary)"
UPSERT_FROM_STAGING = f"""
    INSERT INTO knowledge_nodes ({_COLUMN_NAMES})
    SELECT {_COLUMN_NAMES} FROM knowledge_nodes_load
    ON CONFLICT (id) DO UPDATE SET source_id = EXCLUDED.source_id,
        chunk_index = EXCLUDED.chunk_index, topic_id = EXCLUDED.topic_id, title = EXCLUDED.title,
        content = EXCLUDED.content, kind = EXCLUDED.kind, difficulty = EXCLUDED.difficulty,
        content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding,
        embedding_model = EXCLUDED.embedding_model, metadata = EXCLUDED.metadata,
        updated_at = now()"""

# A load this large (and at least as large as what the table already holds) drops the
# search indexes first and builds them once at the end: building an HNSW graph from all
# rows is many times faster than inserting into it row by row, and so is a GIN index.
BULK_LOAD_MIN_CHUNKS = 10_000


def copy_rows(chunks: Sequence[Chunk], vectors: np.ndarray, topics: set[str], embedding_model: str) -> bytes:
    """The batch in PostgreSQL's binary COPY format (header, tuples, trailer), columns as
    `_STAGING_COLUMNS`; vectors in pgvector's binary form (dim, 0, big-endian float4)."""
    out = bytearray(b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0))
    ncols = struct.pack("!h", len(_STAGING_COLUMNS))
    null = struct.pack("!i", -1)

    def text(value: str | None) -> bytes:
        if value is None:
            return null
        data = value.encode()
        return struct.pack("!i", len(data)) + data

    for chunk, vector in zip(chunks, vectors, strict=True):
        source = chunk.source
        vec = np.asarray(vector, dtype=">f4")
        if vec.ndim != 1:
            raise ValueError(f"embedding of {chunk.id!r} is not a vector")
        metadata = b"\x01" + json.dumps(source.metadata).encode()
        out += ncols
        out += text(chunk.id)
        out += text(source.source_id)
        out += struct.pack("!ii", 4, chunk.index)
        out += text(source.topic_id if source.topic_id in topics else None)
        out += text(source.title)
        out += text(chunk.content)
        out += text(source.kind)
        out += null if source.difficulty is None else struct.pack("!ih", 2, source.difficulty)
        out += text(chunk.hash)
        out += struct.pack("!iHH", 4 + 4 * vec.shape[0], vec.shape[0], 0) + vec.tobytes()
        out += text(embedding_model)
        out += struct.pack("!i", len(metadata)) + metadata
    out += struct.pack("!h", -1)
    return bytes(out)


def write_batch(conn: sa.Connection, payload: bytes) -> None:
    """Upsert one batch (`copy_rows` output) inside the caller's transaction."""
    conn.execute(sa.text(CREATE_STAGING))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(COPY_STAGING, stream=_pieces(payload))
    finally:
        cursor.close()
    conn.execute(sa.text(UPSERT_FROM_STAGING))


def _pieces(payload: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    """COPY data in 1 MB messages (pg8000 sends each item of an iterable as one)."""
    for start in range(0, len(payload), size):
        yield payload[start : start + size]


def migrate_nodes(
    engine: sa.Engine,
    nodes: Iterable[SourceItem],
    embed: Embedder,
    embedding_model: str,
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    rebuild_indexes: bool | None = None,
    maintenance_work_mem: str = "1GB",
    max_chunk_words: int = MAX_CHUNK_WORDS,
) -> MigrationSummary:
    """Chunk, embed what changed, and upsert, one committed batch at a time.

    `rebuild_indexes` (None: decide by size) drops the search indexes before a large
    load and builds them once after it, with `maintenance_work_mem`. A crash in between
    leaves them missing; the next run (which skips what was committed) builds them,
    since every run ends by creating whichever is missing. `max_chunk_words` is the
    chunk size (a source already chunked elsewhere passes one no node exceeds).
    """
    summary = MigrationSummary()
    with engine.connect() as conn:
        topics = set(conn.execute(sa.text("SELECT id FROM topics")).scalars())
        known = {
            row.id: (row.content_hash, row.embedding_model)
            for row in conn.execute(
                sa.text("SELECT id, content_hash, embedding_model FROM knowledge_nodes WHERE embedding IS NOT NULL")
            )
        }
    todo: dict[str, Chunk] = {}  # by id: a node listed twice is loaded once, as last seen
    chunk_counts: dict[str, int] = {}
    for node in nodes:
        if isinstance(node, BadSourceNode):
            summary.bad_nodes.append(str(node))
            continue
        summary.source_nodes += 1
        if node.topic_id and node.topic_id not in topics:
            summary.unknown_topic += 1
        chunks = chunk_node(node, max_chunk_words)
        chunk_counts[node.source_id] = len(chunks)
        for chunk in chunks:
            summary.chunks += 1
            if known.get(chunk.id) == (chunk.hash, embedding_model):
                summary.unchanged += 1
                if progress:
                    progress(1)
                continue
            todo[chunk.id] = chunk
    if rebuild_indexes is None:
        rebuild_indexes = len(todo) >= BULK_LOAD_MIN_CHUNKS and len(todo) >= len(known)
    if rebuild_indexes:
        drop_search_indexes(engine)
    pending = list(todo.values())
    for start in range(0, len(pending), batch_size):
        batch = pending[start : start + batch_size]
        vectors = np.asarray(embed([node_text(c.source.title, c.content) for c in batch]), dtype=np.float32)
        t0 = time.perf_counter()
        payload = copy_rows(batch, vectors, topics, embedding_model)
        with engine.begin() as conn:
            write_batch(conn, payload)
        summary.write_seconds += time.perf_counter() - t0
        summary.embedded += len(batch)
        summary.batches += 1
        if progress:
            progress(len(batch))
    summary.stale_chunks_removed = _remove_stale_chunks(engine, chunk_counts)
    if summary.embedded or summary.stale_chunks_removed:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            summary.terms = refresh_term_stats(conn)
        summary.terms_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary.indexes_built = create_search_indexes(engine, maintenance_work_mem)
    summary.index_seconds = time.perf_counter() - t0 if summary.indexes_built else 0.0
    return summary


# The search indexes as the migrations create them (tests/rag check they match): the
# bulk load drops and rebuilds them by these definitions.
SEARCH_INDEXES = {
    "knowledge_nodes_embedding_hnsw": (
        "CREATE INDEX IF NOT EXISTS knowledge_nodes_embedding_hnsw ON knowledge_nodes "
        "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)"
    ),
    "knowledge_nodes_search_tsv": (
        "CREATE INDEX IF NOT EXISTS knowledge_nodes_search_tsv ON knowledge_nodes USING gin (search_tsv)"
    ),
}


def drop_search_indexes(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for name in SEARCH_INDEXES:
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))


def create_search_indexes(engine: sa.Engine, maintenance_work_mem: str = "1GB") -> list[str]:
    """Create whichever search index is missing (names of those built); then ANALYZE,
    so the planner sees the new row count."""
    built: list[str] = []
    with engine.begin() as conn:
        present = set(
            conn.execute(sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'knowledge_nodes'")).scalars()
        )
        missing = [name for name in SEARCH_INDEXES if name not in present]
        if not missing:
            return built
        conn.execute(sa.text("SELECT set_config('maintenance_work_mem', :m, true)"), {"m": maintenance_work_mem})
        for name in missing:
            conn.execute(sa.text(SEARCH_INDEXES[name]))
            built.append(name)
        conn.execute(sa.text("ANALYZE knowledge_nodes"))
    return built


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
