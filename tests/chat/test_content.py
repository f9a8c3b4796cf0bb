"""Personalized content: explanations and quizzes for a topic, through HTTP."""

from __future__ import annotations

import json

import sqlalchemy as sa

from shared.content.quiz import Quiz


def test_quiz_offline_comes_from_the_question_bank_and_validates(client, bearer, course):
    response = client.post(
        "/api/chat/content", json={"topic_id": "py-loops", "kind": "quiz", "questions": 2}, headers=bearer("alice")
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    quiz = Quiz.model_validate(body["quiz"])
    assert 1 <= len(quiz.questions) <= 2
    with course.connect() as conn:
        bank = {
            r.prompt
            for r in conn.execute(sa.text("SELECT prompt FROM questions WHERE topic_id = 'py-loops' AND kind = 'mcq'"))
        }
        assert conn.execute(sa.text("SELECT count(*) FROM generation_log WHERE task = 'quiz'")).scalar() == 1
    assert {q.question for q in quiz.questions} <= bank
    assert body["provider"] == "offline" and body["level"] == "beginner"


def test_level_follows_mastery_unless_requested(client, bearer, course):
    from shared.mastery.store import record_answer

    with course.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES ('alice') ON CONFLICT DO NOTHING"))
        for _ in range(8):
            record_answer(conn, "alice", "py-loops", True)
    auto = client.post(
        "/api/chat/content", json={"topic_id": "py-loops", "kind": "explanation"}, headers=bearer("alice")
    ).get_json()
    assert auto["level"] == "advanced" and auto["mastery"] > 0.8
    forced = client.post(
        "/api/chat/content",
        json={"topic_id": "py-loops", "kind": "explanation", "level": "beginner", "style": "examples"},
        headers=bearer("alice"),
    ).get_json()
    assert forced["level"] == "beginner" and forced["style"] == "examples"
    assert forced["text"] and forced["sources"]


def test_explanation_streams(client, bearer, course):
    response = client.post(
        "/api/chat/content",
        json={"topic_id": "phys-newton", "kind": "explanation"},
        headers={**bearer("alice"), "Accept": "text/event-stream"},
    )
    blocks = [
        dict(line.split(": ", 1) for line in b.splitlines())
        for b in response.get_data(as_text=True).strip().split("\n\n")
    ]
    events = [(b["event"], json.loads(b["data"])) for b in blocks]
    assert events[0][0] == "metadata" and events[-1][0] == "final"
    assert "".join(d["text"] for e, d in events if e == "delta") == events[-1][1]["text"]


def test_content_errors(client, bearer, course):
    h = bearer("alice")
    assert client.post("/api/chat/content", json={"topic_id": "nope", "kind": "quiz"}, headers=h).status_code == 404
    assert client.post("/api/chat/content", json={"topic_id": "py-loops", "kind": "poem"}, headers=h).status_code == 422
    assert (
        client.post(
            "/api/chat/content", json={"topic_id": "py-loops", "kind": "quiz", "questions": 50}, headers=h
        ).status_code
        == 422
    )
