"""Idempotent writes: grading, feedback, task completion and chat turns retried with the
same Idempotency-Key (concurrently, as an offline client resending does) are answered
with the first result and count once."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
import sqlalchemy as sa
from werkzeug.test import Client

DUPLICATES = 6


def concurrent(app, path: str, body: dict, headers: dict) -> list:
    """The same request DUPLICATES times at once, each from its own client and thread."""
    barrier = threading.Barrier(DUPLICATES)
    results: list = [None] * DUPLICATES

    def send(i: int) -> None:
        client = Client(app)
        barrier.wait(timeout=10)
        results[i] = client.post(path, json=body, headers=headers)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(DUPLICATES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(r is not None for r in results), "a duplicate did not finish in 60 s"
    return results


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"drill-{uuid.uuid4().hex}"}


def same_answers(responses, field: str) -> None:
    assert [r.status_code for r in responses] == [200] * len(responses), [r.get_data(as_text=True) for r in responses]
    values = {json.dumps(r.get_json()[field], sort_keys=True) for r in responses}
    assert len(values) == 1, values
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in responses]
    assert replayed.count(False) == 1  # exactly one request ran the handler


def test_concurrent_duplicate_gradings_count_once(app, bearer, course):
    headers = {**bearer("alice"), **key()}
    responses = concurrent(app, "/api/grading", {"question_id": "q-py-var-1", "answer": 1}, headers)
    same_answers(responses, "attempt_id")
    assert count(course, "SELECT count(*) FROM task_attempts WHERE user_id = 'alice'") == 1
    assert count(course, "SELECT coalesce(sum(n_updates), 0) FROM mastery_state WHERE user_id = 'alice'") <= 1
    # Without a key, a second grading is a second answer (the key is what makes a retry).
    client = Client(app)
    assert (
        client.post(
            "/api/grading", json={"question_id": "q-py-var-1", "answer": 1}, headers=bearer("alice")
        ).status_code
        == 200
    )
    assert count(course, "SELECT count(*) FROM task_attempts WHERE user_id = 'alice'") == 2


def test_concurrent_duplicate_chat_turns_count_once(app, bearer, course):
    headers = {**bearer("alice"), **key()}
    responses = concurrent(app, "/api/chat", {"message": "what is a for loop?"}, headers)
    same_answers(responses, "interaction_id")
    assert count(course, "SELECT count(*) FROM interactions WHERE user_id = 'alice'") == 1
    assert count(course, "SELECT count(*) FROM chat_messages") == 2


STREAM = {"Accept": "text/event-stream"}


def sse_events(response) -> list[tuple[str, dict]]:
    events = []
    for block in response.get_data(as_text=True).split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_streamed_turn_resent_with_its_key_is_replayed_not_answered_again(client, bearer, course):
    """The web client streams chat turns: the first stream's final event is the stored
    answer; the resend (its response was lost) gets it as JSON, and nothing is counted twice."""
    headers = {**bearer("alice"), **key()}
    body = {"message": "what is a for loop?"}
    first = client.post("/api/chat", json=body, headers={**headers, **STREAM})
    assert first.status_code == 200 and first.mimetype == "text/event-stream"
    final = dict(sse_events(first))["final"]
    for accept in (STREAM, {}):  # resent streamed or not: the same stored answer
        again = client.post("/api/chat", json=body, headers={**headers, **accept})
        assert again.status_code == 200 and again.mimetype == "application/json"
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json()["interaction_id"] == final["interaction_id"]
        assert again.get_json()["reply"] == final["reply"]
    assert count(course, "SELECT count(*) FROM interactions WHERE user_id = 'alice'") == 1
    assert count(course, "SELECT count(*) FROM chat_messages") == 2


def test_a_stream_that_ends_without_a_final_event_releases_its_key(client, bearer, course, engine, monkeypatch):
    from shared.chat.pipeline import ChatPipeline

    original = ChatPipeline.finish

    def broken(self, turn, generation):
        raise RuntimeError("the reply could not be finished")

    headers = {**bearer("alice"), **key()}
    body = {"message": "what is a for loop?"}
    monkeypatch.setattr(ChatPipeline, "finish", broken)
    failed = client.post("/api/chat", json=body, headers={**headers, **STREAM})
    assert [event for event, _ in sse_events(failed)][-1] == "error"
    assert count(engine, "SELECT count(*) FROM idempotency_keys WHERE user_id = 'alice'") == 0
    monkeypatch.setattr(ChatPipeline, "finish", original)
    retried = client.post("/api/chat", json=body, headers={**headers, **STREAM})
    assert dict(sse_events(retried))["final"]["reply"]  # the resend ran, and now counts
    assert count(engine, "SELECT count(*) FROM idempotency_keys WHERE user_id = 'alice' AND state = 'done'") == 1


def test_concurrent_duplicate_completions_and_feedback_count_once(app, bearer, course):
    client = Client(app)
    alice = bearer("alice")
    attempt = client.post("/api/prediction", json={"topic_id": "py-loops", "difficulty": 2}, headers=alice).get_json()
    body = {"attempt_id": attempt["attempt_id"], "correct": True, "time_seconds": 30.0}
    responses = concurrent(app, "/api/prediction/complete", body, {**alice, **key()})
    same_answers(responses, "attempt_id")
    assert count(course, "SELECT count(*) FROM task_attempts WHERE status <> 'predicted'") == 1

    turn = client.post("/api/chat", json={"message": "explain while loops"}, headers=alice).get_json()
    fb = {"interaction_id": str(turn["interaction_id"]), "score": -1, "comment": "too long"}
    responses = concurrent(app, "/api/feedback", fb, {**alice, **key()})
    assert [r.status_code for r in responses] == [200] * DUPLICATES
    assert len({json.dumps(r.get_json()["feedback"], sort_keys=True) for r in responses}) == 1
    assert count(course, "SELECT count(*) FROM interactions WHERE feedback_score = -1") == 1


def test_key_reuse_errors_and_other_users(client, bearer, course, engine):
    alice = {**bearer("alice"), **key()}
    first = client.post("/api/grading", json={"question_id": "q-py-var-1", "answer": 1}, headers=alice)
    assert first.status_code == 200
    # The same key for another request: refused, nothing graded.
    reused = client.post("/api/grading", json={"question_id": "q-py-var-2", "answer": 0}, headers=alice)
    assert reused.status_code == 422 and reused.get_json()["error"]["code"] == "idempotency_key_reused"
    # Another student with the same key is another request.
    bob = {**bearer("bob"), "Idempotency-Key": alice["Idempotency-Key"]}
    other = client.post("/api/grading", json={"question_id": "q-py-var-1", "answer": 1}, headers=bob)
    assert other.status_code == 200 and other.get_json()["user_id"] == "bob"
    assert other.get_json()["attempt_id"] != first.get_json()["attempt_id"]
    # A failed first request releases its key: the retry runs.
    failing = {**bearer("carol"), **key()}
    assert client.post("/api/grading", json={"question_id": "nope", "answer": 1}, headers=failing).status_code == 404
    assert client.post("/api/grading", json={"question_id": "nope", "answer": 1}, headers=failing).status_code == 404
    with engine.connect() as conn:
        left = conn.execute(sa.text("SELECT count(*) FROM idempotency_keys WHERE user_id = 'carol'")).scalar_one()
    assert left == 0
    bad = client.post(
        "/api/grading", json={"question_id": "q", "answer": 1}, headers={**bearer("alice"), "Idempotency-Key": "a b"}
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("path", ["/api/chat", "/api/grading", "/api/feedback", "/api/prediction/complete"])
def test_the_document_offers_the_header(path):
    from shared.http.openapi import local_document

    op = local_document()["paths"][path]["post"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in op["parameters"])
