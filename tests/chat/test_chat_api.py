"""POST /api/chat over the local app: the response contract, SSE, errors."""

from __future__ import annotations

import json
import uuid

CONTRACT = {
    "reply",
    "intent",
    "confidence",
    "is_confused",
    "needs_rephrase",
    "mastery",
    "suggestion",
    "sources",
    "request_id",
    "model_versions",
    "provider",
    "timings_ms",
    "session_id",
    "interaction_id",
    "degraded",
}


def test_chat_returns_the_contract_and_continues_a_session(client, bearer, course):
    first = client.post("/api/chat", json={"message": "how does a for loop work?"}, headers=bearer("alice"))
    assert first.status_code == 200, first.get_json()
    body = first.get_json()
    assert CONTRACT <= set(body)
    assert body["request_id"] == first.headers["X-Request-Id"]
    assert body["provider"] == "offline" and "offline" in body["reply"].lower()
    assert all({"node_id", "title", "snippet"} <= set(s) for s in body["sources"])
    second = client.post(
        "/api/chat", json={"message": "and a while loop?", "session_id": body["session_id"]}, headers=bearer("alice")
    )
    assert second.status_code == 200 and second.get_json()["session_id"] == body["session_id"]
    history = client.get(f"/api/chat/sessions/{body['session_id']}/messages", headers=bearer("alice"))
    assert [m["role"] for m in history.get_json()["messages"]] == ["user", "assistant"] * 2
    # The student can rate the reply they got.
    rated = client.post(
        "/api/feedback", json={"interaction_id": body["interaction_id"], "score": 1}, headers=bearer("alice")
    )
    assert rated.status_code == 200


def test_chat_streams_server_sent_events(client, bearer, course):
    response = client.post(
        "/api/chat", json={"message": "what is a variable?"}, headers={**bearer("alice"), "Accept": "text/event-stream"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    events = []
    for block in response.get_data(as_text=True).strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    assert events[0][0] == "metadata" and events[-1][0] == "final"
    assert CONTRACT <= set(events[-1][1])
    assert "".join(d["text"] for e, d in events if e == "delta") == events[-1][1]["reply"]


def test_chat_input_errors(client, bearer, course):
    h = bearer("alice")
    assert client.post("/api/chat", json={"message": ""}, headers=h).status_code == 422
    assert client.post("/api/chat", json={"message": "x" * 4001}, headers=h).status_code == 422
    assert client.post("/api/chat", json={"message": "hi", "topic_id": "nope"}, headers=h).status_code == 404
    assert (
        client.post("/api/chat", json={"message": "hi", "session_id": str(uuid.uuid4())}, headers=h).status_code == 404
    )
    assert client.post("/api/chat", json={"message": "hi"}).status_code == 401
    bob = client.post("/api/chat", json={"message": "hello"}, headers=bearer("bob")).get_json()["session_id"]
    assert client.post("/api/chat", json={"message": "hi", "session_id": bob}, headers=h).status_code == 403


def test_streaming_refusals_keep_their_status(client, bearer, course):
    """What refuses a request (someone else's session, an unknown topic) is decided before
    the stream's first byte, so a streaming client gets the same status as a JSON one."""
    sse = {"Accept": "text/event-stream"}
    bob = client.post("/api/chat", json={"message": "hello"}, headers=bearer("bob")).get_json()["session_id"]
    h = {**bearer("alice"), **sse}
    cases = [
        ({"message": "hi", "session_id": bob}, 403, "forbidden"),
        ({"message": "hi", "session_id": str(uuid.uuid4())}, 404, "not_found"),
        ({"message": "hi", "topic_id": "nope"}, 404, "not_found"),
    ]
    for body, status, code in cases:
        response = client.post("/api/chat", json=body, headers=h)
        assert response.status_code == status, response.get_data(as_text=True)
        assert response.mimetype == "application/json"
        assert response.get_json()["error"]["code"] == code
    # Nothing was written to bob's session by the refused request.
    history = client.get(f"/api/chat/sessions/{bob}/messages", headers=bearer("bob")).get_json()["messages"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["hello"]
