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


def _quiz(client, headers, **body):
    return client.post("/api/chat/content", json={"topic_id": "py-loops", "kind": "quiz", **body}, headers=headers)


def test_quiz_returns_the_number_of_questions_asked_for_or_says_why_not(client, bearer, course):
    """Offline, a quiz comes from the bank: the bank's size is the limit, and a request
    beyond it is a 422 that names the limit, never a silently shorter quiz."""
    h = bearer("alice")
    one = _quiz(client, h, questions=1).get_json()
    assert len(one["quiz"]["questions"]) == 1 and one["source"] == "question_bank"
    two = _quiz(client, h, questions=2).get_json()
    assert len(two["quiz"]["questions"]) == 2 and two["source"] == "question_bank"
    refused = _quiz(client, h, questions=5)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "quiz_unavailable"
    assert "only 2" in error["message"] and "at most 2" in error["message"]
    assert error["details"] == {"requested": 5, "available": 2, "source": "question_bank"}


def test_quiz_focus_draws_matching_bank_questions(client, bearer, course):
    h = bearer("alice")
    focused = _quiz(client, h, questions=1, focus="numbering items with enumerate").get_json()
    assert focused["focus"] == "numbering items with enumerate"
    assert "enumerate" in focused["quiz"]["questions"][0]["question"] + focused["quiz"]["questions"][0]["explanation"]
    # The other bank question (range) does not match, so two questions on this focus are too many.
    too_many = _quiz(client, h, questions=2, focus="enumerate").get_json()["error"]
    assert too_many["code"] == "quiz_unavailable" and "only 1" in too_many["message"]
    nothing = _quiz(client, h, questions=1, focus="recursion depth").get_json()["error"]
    assert "no multiple-choice question matching that focus" in nothing["message"]
    assert "recursion depth" not in nothing["message"]  # the client's words are not echoed
    # A focus that only names the topic itself narrows nothing.
    assert len(_quiz(client, h, questions=2, focus="loops").get_json()["quiz"]["questions"]) == 2


class _ScriptedWriter:
    """An LLM provider that answers with queued quiz JSON and records the prompts it saw."""

    name = "scripted"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.prompts = []

    def describe(self):
        return {"model": "scripted"}

    def generate(self, model, prompt, timeout_s):
        from shared.llm.types import ProviderResult

        self.prompts.append(prompt)
        return ProviderResult(text=json.dumps(self.answers.pop(0)), model="scripted-1")


def _written_quiz(n):
    return {
        "title": "Loops",
        "questions": [
            {"question": f"Question number {i}?", "options": ["a", "b", "c", "d"], "answer": 1, "explanation": "b."}
            for i in range(n)
        ],
    }


def test_quiz_written_by_a_model_has_exactly_the_count_and_sees_the_focus(course):
    from shared.content.generator import ContentRequest, generate_quiz, plan
    from shared.http.auth import Principal
    from shared.llm.providers.offline import OfflineProvider
    from shared.llm.router import LLMRouter

    writer = _ScriptedWriter(_written_quiz(2), _written_quiz(5))  # short first: rejected, asked again
    router = LLMRouter({"scripted": writer, "offline": OfflineProvider()}, ["scripted", "offline"])
    with course.begin() as conn:
        the_plan = plan(
            conn, Principal("alice"), ContentRequest("py-loops", "quiz", questions=5, focus="the else clause")
        )
    quiz, generation, source = generate_quiz(router, the_plan)
    assert len(quiz.questions) == 5 and source == "generated" and generation.provider == "scripted"
    assert len(writer.prompts) == 2
    first = writer.prompts[0]
    assert "5 multiple-choice questions" in first.messages[-1].content
    assert "Focus on: the else clause" in first.messages[-1].content
    # The material the writer sees starts with the node about the focus.
    assert "else" in the_plan.sources[0]["content"].lower()
