"""The demo course: a structure the tutor can rely on, and exact terms full-text search finds.

The tutor retrieves nodes by the words students type (error names, function names,
formulas) and picks misconception and worked-example nodes for confused students, so
these tests check the content's shape as well as its validity: sizes, kinds per topic,
gradable questions, an acyclic prerequisite graph, and real retrieval in Postgres.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from graphlib import CycleError, TopologicalSorter
from typing import Any

import pytest
import sqlalchemy as sa

from local.stack import DEMO_COURSE
from shared.curriculum import load_course_data

NODE_KINDS = {"explanation", "example", "misconception", "exercise", "summary"}
WORDS_PER_NODE = (60, 180)  # long enough to stand alone, short enough to be one retrievable idea


@pytest.fixture(scope="module")
def course() -> dict[str, Any]:
    return json.loads(DEMO_COURSE.read_text(encoding="utf-8"))


def topic_course(course: dict[str, Any]) -> dict[str, str]:
    """topic id -> id of the course it belongs to."""
    return {t["id"]: c["id"] for c in course["courses"] for t in c["topics"]}


def words(text: str) -> int:
    return len(text.split())


def test_ids_are_unique(course):
    groups = {
        "courses": [c["id"] for c in course["courses"]],
        "topics": [t["id"] for c in course["courses"] for t in c["topics"]],
        "nodes": [n["id"] for n in course["nodes"]],
        "questions": [q["id"] for q in course["questions"]],
    }
    for name, ids in groups.items():
        duplicates = [i for i, k in Counter(ids).items() if k > 1]
        assert not duplicates, f"duplicate {name} ids: {duplicates}"
        assert all(isinstance(i, str) and i.strip() == i and i for i in ids), name


def test_every_node_and_question_references_a_topic(course):
    topics = topic_course(course)
    assert [n["id"] for n in course["nodes"] if n["topic_id"] not in topics] == []
    assert [q["id"] for q in course["questions"] if q["topic_id"] not in topics] == []


def test_nodes_are_self_contained_and_well_formed(course):
    low, high = WORDS_PER_NODE
    for node in course["nodes"]:
        assert node["title"].strip(), node["id"]
        assert node.get("kind", "explanation") in NODE_KINDS, node["id"]
        assert isinstance(node["difficulty"], int) and 1 <= node["difficulty"] <= 5, node["id"]
        assert low <= words(node["content"]) <= high, f"{node['id']}: {words(node['content'])} words"


def test_size_and_balance_of_the_course(course):
    """About a hundred nodes, mostly programming, and the kinds the tutor asks for when a student is confused."""
    per_course = Counter(topic_course(course)[n["topic_id"]] for n in course["nodes"])
    assert 90 <= len(course["nodes"]) <= 110
    assert 60 <= per_course["intro-python"] <= 70
    assert 30 <= per_course["physics-motion"] <= 40
    assert 35 <= len(course["questions"]) <= 45


def test_every_topic_has_enough_material(course):
    nodes = Counter(n["topic_id"] for n in course["nodes"])
    kinds = {(n["topic_id"], n.get("kind", "explanation")) for n in course["nodes"]}
    question_kinds = Counter((q["topic_id"], q["kind"]) for q in course["questions"])
    for topic in topic_course(course):
        assert nodes[topic] >= 3, topic
        assert (topic, "misconception") in kinds and (topic, "example") in kinds, topic
        assert question_kinds[(topic, "mcq")] + question_kinds[(topic, "short_answer")] >= 2, topic
        assert question_kinds[(topic, "mcq")] >= 1 and question_kinds[(topic, "short_answer")] >= 1, topic


def test_questions_are_gradable(course):
    """What the questions table's CHECK demands, plus what a grader needs to give feedback."""
    for q in course["questions"]:
        assert q["kind"] in {"mcq", "short_answer"}, q["id"]
        assert q["prompt"].strip() and q.get("explanation", "").strip(), q["id"]
        assert isinstance(q["difficulty"], int) and 1 <= q["difficulty"] <= 5, q["id"]
        if q["kind"] == "mcq":
            options = q["options"]
            assert len(options) >= 3 and len(set(options)) == len(options), q["id"]
            assert all(isinstance(o, str) and o.strip() for o in options), q["id"]
            assert isinstance(q["correct_option"], int) and 0 <= q["correct_option"] < len(options), q["id"]
        else:
            assert q["reference_answer"].strip() and "options" not in q, q["id"]


def test_prerequisites_stay_in_their_course_and_form_no_cycle(course):
    for c in course["courses"]:
        own = {t["id"] for t in c["topics"]}
        graph = {t["id"]: t.get("prerequisites", []) for t in c["topics"]}
        for topic, prerequisites in graph.items():
            assert set(prerequisites) <= own - {topic}, f"{topic}: {prerequisites}"
        try:
            tuple(TopologicalSorter(graph).static_order())
        except CycleError as err:  # pragma: no cover - the message is the diagnosis
            pytest.fail(f"prerequisite cycle in {c['id']}: {err.args[1]}")


def test_methods_called_with_a_dot_are_also_named_bare(course):
    """Postgres' text parser reads `nums.append(4)` as one host-like token, so a search for
    append would miss a node that only ever writes it after a dot: name it bare too."""
    for node in course["nodes"]:
        text = f"{node['title']} {node['content']}"
        for method in set(re.findall(r"\.(\w+)\(", text)):
            assert re.search(rf"(?<![\w.]){method}\b", text), f"{node['id']}: name {method}() without a dot"


# (query as a student would type it, the node that must rank first)
SEARCHES = [
    ("ZeroDivisionError", "py-dbg-04"),
    ("enumerate", "py-loop-07"),
    ("KeyError", "py-dict-02"),
    ("heavier objects fall faster", "phys-kin-05"),
    ("range excludes stop", "py-loop-03"),
    ("dict.get", "py-dict-02"),
    ("KE = 1/2 m v^2", "phys-en-02"),
    ("momentum lost in an inelastic collision", "phys-mom-06"),
]
# single terms whose every literal occurrence full-text search must find
EXACT_TERMS = ["ZeroDivisionError", "enumerate", "KeyError", "IndexError", "append", "dict.get"]


def search(conn: sa.Connection, query: str) -> list[str]:
    rows = conn.execute(
        sa.text(
            """SELECT id FROM knowledge_nodes, websearch_to_tsquery('english', :q) AS q
                WHERE search_tsv @@ q
                ORDER BY ts_rank(search_tsv, q) DESC, id"""
        ),
        {"q": query},
    )
    return [r.id for r in rows]


def test_full_text_search_finds_exact_terms_in_the_loaded_course(db, course):
    with db.begin() as conn:
        summary = load_course_data(conn, course)
    assert summary.nodes_new_or_changed == len(course["nodes"])
    assert summary.questions == len(course["questions"])

    with db.connect() as conn:
        for query, first in SEARCHES:
            found = search(conn, query)
            assert found and found[0] == first, f"{query!r}: {found}"
        for term in EXACT_TERMS:
            pattern = re.compile(rf"\b{re.escape(term)}", re.IGNORECASE)
            expected = {n["id"] for n in course["nodes"] if pattern.search(f"{n['title']} {n['content']}")}
            assert expected, term
            assert set(search(conn, term)) == expected, term
