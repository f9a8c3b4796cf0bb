"""migrate_vectors: chunking, idempotence, resume after a crash, Firestore as a source."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import sqlalchemy as sa

from shared.rag.knowledge_base import (
    BadSourceNode,
    SourceNode,
    chunk_node,
    migrate_nodes,
    nodes_from_firestore,
    nodes_from_json,
    normalize_node,
)

LONG = " ".join(f"Sentence number {i} explains one more detail of loops and ranges." for i in range(60))


def nodes(n: int = 5, **overrides) -> list[SourceNode]:
    return [
        SourceNode(f"n{i}", f"Title {i}", f"Content of node {i}. It is short.", "loops", **overrides) for i in range(n)
    ]


@pytest.fixture()
def topics(db):
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        conn.execute(sa.text("INSERT INTO topics (id, course_id, title) VALUES ('loops', 'c', 'Loops')"))
    return db


def rows(db) -> dict[str, tuple]:
    with db.connect() as conn:
        return {
            r.id: (r.source_id, r.chunk_index, r.topic_id, r.embedding_model)
            for r in conn.execute(
                sa.text("SELECT id, source_id, chunk_index, topic_id, embedding_model FROM knowledge_nodes")
            )
        }


def test_short_node_is_one_chunk_long_node_is_split_with_overlap():
    assert len(chunk_node(nodes(1)[0])) == 1
    node = SourceNode("big", "Loops", LONG)
    chunks = chunk_node(node, max_words=100)
    assert len(chunks) > 3
    assert [c.id for c in chunks[:2]] == ["big", "big#1"]
    assert all(len(c.content.split()) <= 100 + 12 for c in chunks)
    # consecutive chunks share a sentence; together they cover the text
    assert chunks[0].content.split(". ")[-1] in chunks[1].content
    assert "Sentence number 59" in chunks[-1].content


def test_normalize_accepts_legacy_field_names_and_rejects_empty():
    node = normalize_node("doc1", {"text": "Body.", "name": "Name", "topicId": "loops", "type": "example"})
    assert (node.source_id, node.title, node.topic_id, node.kind) == ("doc1", "Name", "loops", "example")
    with pytest.raises(BadSourceNode):
        normalize_node("doc2", {"title": "no content"})


def test_migration_is_idempotent_and_reembeds_only_changes(topics, make_embedder):
    first = make_embedder()
    summary = migrate_nodes(topics, nodes(5), first, first.model_name, batch_size=2)
    assert (summary.embedded, summary.batches, summary.unchanged) == (5, 3, 0)
    again = make_embedder()
    summary = migrate_nodes(topics, nodes(5), again, again.model_name, batch_size=2)
    assert (summary.embedded, summary.unchanged, again.calls) == (0, 5, 0)
    changed = nodes(5)
    changed[3] = SourceNode("n3", "Title 3", "New content for node 3.", "loops")
    summary = migrate_nodes(topics, changed, again, again.model_name)
    assert summary.embedded == 1 and "New content" in again.texts[0]


def test_new_encoder_reembeds_everything(topics, make_embedder):
    e = make_embedder()
    migrate_nodes(topics, nodes(3), e, "encoder-v1")
    summary = migrate_nodes(topics, nodes(3), e, "encoder-v2")
    assert summary.embedded == 3
    assert {r[3] for r in rows(topics).values()} == {"encoder-v2"}


def test_crash_mid_run_keeps_committed_batches_and_resumes(topics, make_embedder):
    crashing = make_embedder(fail_on_call=3)
    with pytest.raises(RuntimeError):
        migrate_nodes(topics, nodes(10), crashing, "m", batch_size=3)
    assert len(rows(topics)) == 6  # two batches committed before the crash
    resumed = make_embedder()
    summary = migrate_nodes(topics, nodes(10), resumed, "m", batch_size=3)
    assert (summary.unchanged, summary.embedded) == (6, 4)
    assert len(rows(topics)) == 10


def test_shrunk_node_loses_its_stale_chunks(topics, embedder):
    migrate_nodes(topics, [SourceNode("big", "Loops", LONG, "loops")], embedder, "m")
    assert len(rows(topics)) > 1
    summary = migrate_nodes(topics, [SourceNode("big", "Loops", "Now it is short.", "loops")], embedder, "m")
    assert summary.stale_chunks_removed >= 1
    assert list(rows(topics)) == ["big"]


def test_unknown_topic_and_bad_nodes_are_reported_not_fatal(topics, embedder, tmp_path):
    path = tmp_path / "nodes.json"
    path.write_text(
        json.dumps(
            {
                "nodes": [
                    {"id": "a", "title": "A", "content": "Fine.", "topic_id": "loops"},
                    {"id": "b", "title": "B", "content": "Orphan.", "topic_id": "no-such-topic"},
                    {"id": "c", "title": "C"},
                    "not an object",
                ]
            }
        )
    )
    summary = migrate_nodes(topics, nodes_from_json(path), embedder, "m")
    assert summary.source_nodes == 2 and summary.unknown_topic == 1 and len(summary.bad_nodes) == 2
    assert rows(topics)["b"][2] is None and rows(topics)["a"][2] == "loops"


def test_firestore_emulator_as_source(topics, embedder, firestore_emulator):
    from google.cloud import firestore

    project = "demo-firestore-test"
    client = firestore.Client(project=project)
    collection = f"nodes_{uuid.uuid4().hex[:6]}"
    for i in range(4):
        client.collection(collection).document(f"doc{i}").set(
            {"title": f"Node {i}", "content": f"Firestore content {i}.", "topicId": "loops"}
        )
    client.collection(collection).document("broken").set({"title": "nothing here"})

    summary = migrate_nodes(topics, nodes_from_firestore(collection, project=project), embedder, "m")
    assert summary.source_nodes == 4 and summary.embedded == 4 and len(summary.bad_nodes) == 1
    assert {k for k in rows(topics)} == {"doc0", "doc1", "doc2", "doc3"}
    again = migrate_nodes(topics, nodes_from_firestore(collection, project=project), embedder, "m")
    assert again.embedded == 0 and again.unchanged == 4


def index_definitions(db) -> dict[str, str]:
    with db.connect() as conn:
        return dict(
            conn.execute(
                sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'knowledge_nodes'")
            ).all()
        )


def test_bulk_load_copies_every_field_and_rebuilds_the_migrations_indexes(topics, embedder):
    before = index_definitions(topics)
    source = [
        SourceNode(
            f"b{i}", f"Bulk {i}", f"Body of bulk node {i}. Quote ' and \\t tab.", "loops", "example", 3, {"url": "u"}
        )
        for i in range(7)
    ]
    source.append(SourceNode("orphan", "Orphan", "No topic of ours.", "nowhere", difficulty=None))
    summary = migrate_nodes(topics, source, embedder, "m", batch_size=3, rebuild_indexes=True)
    assert (summary.embedded, summary.batches) == (8, 3)
    assert sorted(summary.indexes_built) == ["knowledge_nodes_embedding_hnsw", "knowledge_nodes_search_tsv"]
    assert index_definitions(topics) == before  # same indexes, same definitions as the migrations'
    with topics.connect() as conn:
        got = {
            r.id: r
            for r in conn.execute(
                sa.text(
                    "SELECT id, source_id, chunk_index, topic_id, title, content, kind, difficulty, content_hash, "
                    "embedding, embedding_model, metadata FROM knowledge_nodes"
                )
            )
        }
    row = got["b4"]
    assert (row.source_id, row.chunk_index, row.topic_id, row.title, row.kind, row.difficulty) == (
        "b4",
        0,
        "loops",
        "Bulk 4",
        "example",
        3,
    )
    assert row.content == "Body of bulk node 4. Quote ' and \\t tab." and row.metadata == {"url": "u"}
    assert row.content_hash == chunk_node(source[4])[0].hash
    expected = embedder([f"Bulk 4. {row.content}"])[0]
    assert np.allclose(row.embedding, expected, atol=1e-6)
    assert got["orphan"].topic_id is None and got["orphan"].difficulty is None
    # full text is searchable through the rebuilt GIN index
    with topics.connect() as conn:
        hits = conn.execute(
            sa.text("SELECT id FROM knowledge_nodes WHERE search_tsv @@ plainto_tsquery('english', 'orphan')")
        ).scalars()
        assert list(hits) == ["orphan"]


def test_bulk_load_crash_leaves_committed_batches_and_the_resume_rebuilds_indexes(topics, make_embedder):
    before = index_definitions(topics)
    with pytest.raises(RuntimeError):
        migrate_nodes(topics, nodes(10), make_embedder(fail_on_call=3), "m", batch_size=3, rebuild_indexes=True)
    assert len(rows(topics)) == 6
    assert "knowledge_nodes_embedding_hnsw" not in index_definitions(topics)  # dropped for the load
    resumed = make_embedder()
    summary = migrate_nodes(topics, nodes(10), resumed, "m", batch_size=3)
    assert (summary.unchanged, summary.embedded) == (6, 4)
    assert index_definitions(topics) == before
    again = migrate_nodes(topics, nodes(10), resumed, "m", batch_size=3)
    assert (again.embedded, again.indexes_built) == (0, [])


def test_a_node_listed_twice_is_loaded_once_as_last_seen(topics, embedder):
    twice = [SourceNode("d", "D", "First text.", "loops"), SourceNode("d", "D", "Second text.", "loops")]
    summary = migrate_nodes(topics, twice, embedder, "m", batch_size=10)
    assert summary.embedded == 1
    with topics.connect() as conn:
        assert conn.execute(sa.text("SELECT content FROM knowledge_nodes WHERE id = 'd'")).scalar() == "Second text."


def test_a_large_load_into_an_empty_table_rebuilds_indexes_by_itself(topics, embedder, monkeypatch):
    import shared.rag.knowledge_base as kb

    monkeypatch.setattr(kb, "BULK_LOAD_MIN_CHUNKS", 5)
    summary = migrate_nodes(topics, nodes(6), embedder, "m")
    assert len(summary.indexes_built) == 2
    changed = [SourceNode(f"n{i}", f"Title {i}", f"Changed text {i}.", "loops") for i in range(3)]
    small = migrate_nodes(topics, [*changed, *nodes(6)[3:]], embedder, "m")
    assert (small.embedded, small.indexes_built) == (3, [])  # 3 changed of 6: indexes kept
