"""check_rag_health with the published encoder on the demo course: every seeded query
finds a relevant node, and the HNSW index agrees with exact search."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.rag.health_check import DEFAULT_QUERIES, index_recall, run_queries, sample_node_queries

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def embedded_demo(embedded_demo_course):
    from shared.embeddings.service import get_embedding_service

    return embedded_demo_course, get_embedding_service()


def test_seeded_queries_find_their_nodes(embedded_demo):
    engine, service = embedded_demo
    queries = json.loads(DEFAULT_QUERIES.read_text())
    results = run_queries(engine, queries, service.embed, k=5)
    failures = [(r.query, r.got) for r in results if not r.ok]
    assert failures == []


def test_index_recall_against_exact_search(embedded_demo):
    engine, _ = embedded_demo
    assert index_recall(engine, sample_node_queries(engine, 50)) >= 0.95


def test_cli_fails_when_a_query_finds_nothing(embedded_demo, tmp_path):
    bad = tmp_path / "queries.json"
    bad.write_text(json.dumps([{"query": "how do loops work", "expect_any": ["no-such-node"]}]))
    # The CLI inherits STATE_DIR, so it attaches to this test's embedded server and sees
    # the demo course just loaded; the query's expected node does not exist.
    proc = subprocess.run(
        [sys.executable, "-m", "shared.rag.health_check", "--queries", str(bad)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout
