"""GET /api/prediction/questions: a topic's questions as a student sees them (issue 17, 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa

REFERENCE = "A for loop runs its body once per item of the iterable."
RUBRIC = "Mentions one iteration per item."
EXPLANATION = "The answer is 3: range(3) yields three numbers."


@pytest.fixture()
def questions(course: Any) -> Any:
    """The course of conftest (one MCQ on py-loops, difficulty 4) plus a short answer
    and a second MCQ whose key, explanation and rubric must never reach a student."""
    with course.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO questions (id, topic_id, kind, prompt, reference_answer, rubric, explanation,
                                          difficulty)
                   VALUES ('q-loops-sa', 'py-loops', 'short_answer', 'What does a for loop do?',
                           :ref, :rubric, :expl, 2)"""
            ),
            {"ref": REFERENCE, "rubric": RUBRIC, "expl": EXPLANATION},
        )
        conn.execute(
            sa.text(
                """INSERT INTO questions (id, topic_id, kind, prompt, options, correct_option, explanation,
                                          difficulty)
                   VALUES ('q-loops-2', 'py-loops', 'mcq', 'range(3) yields how many?',
                           '["2", "3", "4"]'::jsonb, 1, :expl, 2)"""
            ),
            {"expl": EXPLANATION},
        )
    return course


def _list(client: Any, bearer: Any, user: str = "alice", **params: Any) -> Any:
    return client.get("/api/prediction/questions", query_string=params, headers=bearer(user))


def test_a_student_lists_a_topics_questions_without_the_answer_key(
    client: Any, bearer: Any, questions: Any, network: Any
) -> None:
    res = _list(client, bearer, topic_id="py-loops")
    assert res.status_code == 200, res.json
    body = res.json
    assert body["topic_id"] == "py-loops" and body["user_id"] == "alice"
    listed = body["questions"]
    assert [q["id"] for q in listed] == ["q-loops-2", "q-loops-sa", "q-loops-1"]  # easiest first
    mcq = listed[0]
    assert mcq == {
        "id": "q-loops-2",
        "topic_id": "py-loops",
        "kind": "mcq",
        "prompt": "range(3) yields how many?",
        "options": ["2", "3", "4"],
        "difficulty": 2,
        "max_score": 10,
    }
    assert listed[1]["kind"] == "short_answer" and listed[1]["options"] is None
    raw = res.get_data(as_text=True)
    for secret in ("correct_option", "reference_answer", "rubric", "explanation", REFERENCE, RUBRIC, EXPLANATION):
        assert secret not in raw
    assert "prediction" not in mcq
    with questions.connect() as conn:  # listing is a read
        assert conn.execute(sa.text("SELECT count(*) FROM task_attempts")).scalar_one() == 0


def test_with_predict_each_question_carries_this_students_prediction(
    client: Any, bearer: Any, questions: Any, network: Any
) -> None:
    res = _list(client, bearer, topic_id="py-loops", predict="true")
    assert res.status_code == 200, res.json
    listed = res.json["questions"]
    for q in listed:
        p = q["prediction"]
        assert 0.01 <= p["p_correct"] <= 0.99 and p["expected_seconds"] >= 1 and p["model"] == "default"
    by_id = {q["id"]: q["prediction"] for q in listed}
    assert by_id["q-loops-1"]["p_correct"] < by_id["q-loops-2"]["p_correct"]  # difficulty 4 vs 2
    # the same answer the student gets when starting the task
    started = client.post("/api/prediction", json={"question_id": "q-loops-1"}, headers=bearer("alice")).json
    assert started["p_correct"] == by_id["q-loops-1"]["p_correct"]
    with questions.connect() as conn:  # only the POST recorded an attempt
        assert conn.execute(sa.text("SELECT count(*) FROM task_attempts")).scalar_one() == 1
    assert EXPLANATION not in json.dumps(res.json)


def test_filter_by_difficulty_and_limit(client: Any, bearer: Any, questions: Any, network: Any) -> None:
    assert [q["id"] for q in _list(client, bearer, topic_id="py-loops", difficulty=4).json["questions"]] == [
        "q-loops-1"
    ]
    assert len(_list(client, bearer, topic_id="py-loops", limit=1).json["questions"]) == 1
    assert _list(client, bearer, topic_id="py-basics").json["questions"] == []


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"topic_id": "no-such-topic"}, 404),
        ({}, 422),
        ({"topic_id": "py-loops", "difficulty": 9}, 422),
        ({"topic_id": "py-loops", "predict": "maybe"}, 422),
        ({"topic_id": "py-loops", "limit": 0}, 422),
        ({"topic_id": "py-loops", "answers": "true"}, 422),
    ],
)
def test_bad_question_queries(client: Any, bearer: Any, questions: Any, params: dict, status: int) -> None:
    res = _list(client, bearer, **params)
    assert res.status_code == status, res.json
    assert res.json["error"]["code"]


def test_listing_needs_a_token(client: Any, questions: Any) -> None:
    assert client.get("/api/prediction/questions?topic_id=py-loops").status_code == 401


def test_the_domain_function_never_reads_the_key(questions: Any) -> None:
    from shared.curriculum import TopicNotFoundError, list_questions

    with questions.connect() as conn:
        listed = list_questions(conn, "py-loops")
        with pytest.raises(TopicNotFoundError):
            list_questions(conn, "nope")
    assert all(set(q) == {"id", "topic_id", "kind", "prompt", "options", "difficulty", "max_score"} for q in listed)
