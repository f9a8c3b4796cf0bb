"""Migrations apply from zero, are idempotent, revert, and serialise concurrent runs."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from shared.db.engine import create_engine, ensure_database
from shared.db.migrate import current_revision, downgrade, head_revision, upgrade

REPO = Path(__file__).resolve().parents[2]
EXPECTED_TABLES = {
    "idempotency_keys",
    "users",
    "courses",
    "topics",
    "knowledge_nodes",
    "questions",
    "task_attempts",
    "mastery_state",
    "student_progress",
    "chat_sessions",
    "chat_messages",
    "interactions",
    "generation_log",
    "training_runs",
    "model_versions",
    "retrain_requests",
    "prediction_counters",
    "label_events",
    "label_counters",
    "model_pointer_events",
    "silver_labels",
    "knowledge_terms",
}


@pytest.fixture()
def fresh_engine(engine, settings):
    """An empty database of its own on the test server, dropped afterwards."""
    name = f"mig_{uuid.uuid4().hex[:8]}"
    server_url = engine.url.set(database="postgres")
    ensure_database(server_url.render_as_string(hide_password=False), name)
    eng = create_engine(
        settings.model_copy(
            update={"database_url": engine.url.set(database=name).render_as_string(hide_password=False)}
        )
    )
    yield eng
    eng.dispose()
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def tables(eng) -> set[str]:
    return set(sa.inspect(eng).get_table_names()) - {"alembic_version"}


def test_upgrade_from_zero_creates_whole_schema(fresh_engine):
    assert current_revision(fresh_engine) is None
    assert upgrade(fresh_engine) == head_revision()
    assert tables(fresh_engine) == EXPECTED_TABLES
    with fresh_engine.connect() as conn:
        index = conn.execute(
            sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = 'knowledge_nodes_embedding_hnsw'")
        ).scalar()
        assert "hnsw" in index and "vector_cosine_ops" in index
        dim = conn.execute(
            sa.text(
                """SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                WHERE attrelid = 'knowledge_nodes'::regclass AND attname = 'embedding'"""
            )
        ).scalar()
        assert dim == "vector(384)"


def test_upgrade_is_idempotent(fresh_engine):
    upgrade(fresh_engine)
    before = tables(fresh_engine)
    assert upgrade(fresh_engine) == head_revision()
    assert tables(fresh_engine) == before


def test_downgrade_to_base_and_back(fresh_engine):
    upgrade(fresh_engine)
    assert downgrade(fresh_engine, "base") is None
    assert tables(fresh_engine) == set()
    upgrade(fresh_engine)
    assert tables(fresh_engine) == EXPECTED_TABLES


def test_concurrent_upgrades_from_separate_processes_do_not_collide(fresh_engine):
    """Cold-starting instances migrate at once; the advisory lock serialises them."""
    url = fresh_engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "DATABASE_URL": url}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "shared.db.migrate", "upgrade"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert current_revision(fresh_engine) == head_revision()
    assert tables(fresh_engine) == EXPECTED_TABLES


def test_pgvector_adapters_round_trip_numpy_and_cosine_search(db):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 384)).astype(np.float32)
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        conn.execute(sa.text("INSERT INTO topics (id, course_id, title) VALUES ('t', 'c', 'T')"))
        for i, v in enumerate(vectors):
            conn.execute(
                sa.text(
                    """INSERT INTO knowledge_nodes (id, source_id, topic_id, title, content, content_hash, embedding)
                   VALUES (:id, :id, 't', 'n', 'body', 'h', :v)"""
                ),
                {"id": f"n{i}", "v": v},
            )
        back = conn.execute(sa.text("SELECT embedding FROM knowledge_nodes WHERE id = 'n3'")).scalar()
        assert isinstance(back, np.ndarray) and back.dtype == np.float32
        np.testing.assert_allclose(back, vectors[3], rtol=1e-6)
        query = vectors[2] + 0.01
        nearest = conn.execute(
            sa.text("SELECT id FROM knowledge_nodes ORDER BY embedding <=> :q LIMIT 1"), {"q": query}
        ).scalar()
        assert nearest == "n2"


def test_full_text_column_is_generated(db):
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO knowledge_nodes (id, source_id, title, content, content_hash)
               VALUES ('ft', 'ft', 'The range function', 'range(start, stop) excludes stop', 'h')"""
            )
        )
        hit = conn.execute(
            sa.text("SELECT id FROM knowledge_nodes WHERE search_tsv @@ plainto_tsquery('english', 'excluded stop')")
        ).scalar()
    assert hit == "ft"


def test_schema_rejects_inconsistent_questions(db):
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        conn.execute(sa.text("INSERT INTO topics (id, course_id, title) VALUES ('t', 'c', 'T')"))
    with pytest.raises(sa.exc.DBAPIError, match="questions_check"), db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO questions (id, topic_id, kind, prompt, options, correct_option)
               VALUES ('q', 't', 'mcq', 'p', '["a", "b"]', 5)"""
            )
        )
