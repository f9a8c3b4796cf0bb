"""Loading a course file: idempotent, and re-embedding only what changed."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import sqlalchemy as sa

from local.stack import DEMO_COURSE
from shared.curriculum import list_topics, load_course_data
from tests.fakes import CountingEmbedder


def demo() -> dict:
    return json.loads(Path(DEMO_COURSE).read_text())


def test_demo_course_loads_and_reloads_without_re_embedding(db):
    data, embed = demo(), CountingEmbedder()
    with db.begin() as conn:
        first = load_course_data(conn, data, embed=embed, embedding_model="test-embedder")
    assert first.nodes_new_or_changed == len(data["nodes"]) == first.embedded
    with db.begin() as conn:
        second = load_course_data(conn, data, embed=embed, embedding_model="test-embedder")
    assert second.nodes_unchanged == len(data["nodes"]) and second.embedded == 0
    assert len(embed.texts) == len(data["nodes"])

    changed = copy.deepcopy(data)
    changed["nodes"][0]["content"] += " Names are case-sensitive."
    with db.begin() as conn:
        third = load_course_data(conn, changed, embed=embed, embedding_model="test-embedder")
    assert third.embedded == 1 and "case-sensitive" in embed.texts[-1]

    with db.connect() as conn:
        topics = list_topics(conn)
        missing = conn.execute(sa.text("SELECT count(*) FROM knowledge_nodes WHERE embedding IS NULL")).scalar()
    assert {t["id"] for t in topics} >= {"py-loops", "phys-newton"}
    assert missing == 0


def test_every_demo_question_and_node_references_a_demo_topic():
    data = demo()
    topic_ids = {t["id"] for c in data["courses"] for t in c["topics"]}
    assert {n["topic_id"] for n in data["nodes"]} <= topic_ids
    assert {q["topic_id"] for q in data["questions"]} <= topic_ids
    for q in data["questions"]:
        if q["kind"] == "mcq":
            assert 0 <= q["correct_option"] < len(q["options"])
        else:
            assert q["reference_answer"]
