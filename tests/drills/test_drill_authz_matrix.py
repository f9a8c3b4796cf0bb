"""Authorization matrix: every route × every kind of caller → the expected status,
with real RS256 verification against a loopback key server (no emulator mode).

Callers: no token, a malformed header, garbage, an unsigned (emulator) token, an
expired token, wrong audience, wrong issuer, a bad signature, another student (bob),
the owner (alice) and an admin. Alice's data (sessions, messages, attempts, mastery,
feedback, predictions) is created first; afterwards no response to anyone else has
carried it and no row of hers has changed, except what the owner herself did.

The route list is the OpenAPI route table: a new route fails
`test_matrix_covers_every_route` until it has a row here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from local.tokens import mint_emulator_token
from shared.http.openapi import local_document
from tests.drills.conftest import DRILL_PROJECT, sign

OWNER, OTHER, ADMIN = "alice", "bob", "root"
BAD_CALLERS = ("none", "malformed", "garbage", "unsigned", "expired", "wrong_audience", "wrong_issuer", "bad_signature")
CALLERS = (*BAD_CALLERS, "other", "admin", "owner")


def all_headers(keys) -> dict[str, dict[str, str]]:
    """One header per caller, signed once (loading an RSA key is the slow part)."""
    return {caller: headers_for(caller, keys) for caller in CALLERS}


def headers_for(caller: str, keys) -> dict[str, str]:
    token = {
        "none": lambda: None,
        "malformed": lambda: "Basic YWxpY2U6cHc=",
        "garbage": lambda: "Bearer not.a.jwt",
        "unsigned": lambda: f"Bearer {mint_emulator_token(OWNER, DRILL_PROJECT)}",
        "expired": lambda: f"Bearer {sign(keys, OWNER, exp_in=-600)}",
        "wrong_audience": lambda: f"Bearer {sign(keys, OWNER, aud='another-project')}",
        "wrong_issuer": lambda: f"Bearer {sign(keys, OWNER, iss='https://securetoken.google.com/another-project')}",
        "bad_signature": lambda: f"Bearer {sign(keys, OWNER, key='forged')}",
        "other": lambda: f"Bearer {sign(keys, OTHER)}",
        "admin": lambda: f"Bearer {sign(keys, ADMIN, role='admin')}",
        "owner": lambda: f"Bearer {sign(keys, OWNER)}",
    }[caller]()
    return {"Authorization": token} if token else {}


@dataclass
class Case:
    method: str
    template: str  # the OpenAPI path
    build: Callable[[dict[str, Any], str], tuple[str, dict | None]]  # (alice's data, caller) → (url, body)
    other: int  # another student's status
    admin: int
    owner: int = 200
    auth: bool = True


def _fixed(url: str, body: dict | None = None):
    return lambda data, caller: (url.format(**data), body)


def _attempt(data, caller):
    """Alice's open attempt; the owner completes a fresh one (completing is once only)."""
    attempt = data["new_attempt"]() if caller == "owner" else data["attempt_id"]
    return "/api/prediction/complete", {"attempt_id": attempt, "correct": True, "time_seconds": 12.0}


CASES = [
    Case("GET", "/api/health", _fixed("/api/health"), other=200, admin=200, auth=False),
    Case("GET", "/api/chat/topics", _fixed("/api/chat/topics"), other=200, admin=200),
    # Each function's own OpenAPI document is public, like the combined one.
    *(
        Case("GET", f"/api/{fn}/openapi.json", _fixed(f"/api/{fn}/openapi.json"), other=200, admin=200, auth=False)
        for fn in ("chat", "grading", "prediction", "feedback")
    ),
    # The instance's counters: admins only.
    Case("GET", "/api/admin/counters", _fixed("/api/admin/counters"), other=403, admin=200, owner=403),
    # A chat is the student's: only the owner may add to it, admins included.
    Case(
        "POST",
        "/api/chat",
        lambda d, c: ("/api/chat", {"message": "what is a for loop?", "session_id": d["session_id"]}),
        other=403,
        admin=403,
    ),
    Case(
        "POST",
        "/api/chat/content",
        _fixed("/api/chat/content", {"topic_id": "py-loops", "kind": "explanation"}),
        other=200,
        admin=200,
    ),
    Case("GET", "/api/chat/sessions", _fixed("/api/chat/sessions?user_id=alice"), other=403, admin=200),
    # For other back ends: admins and service accounts only (a student is refused).
    Case(
        "POST",
        "/api/chat/embeddings",
        _fixed("/api/chat/embeddings", {"texts": ["what is a for loop?"]}),
        other=403,
        admin=200,
        owner=403,
    ),
    Case(
        "GET",
        "/api/chat/sessions/{session_id}/messages",
        _fixed("/api/chat/sessions/{session_id}/messages"),
        other=403,
        admin=200,
    ),
    Case(
        "POST",
        "/api/grading",
        lambda d, c: ("/api/grading", {"question_id": "q-py-var-1", "answer": 1, "user_id": OWNER}),
        other=403,
        admin=200,
    ),
    Case("GET", "/api/grading/attempts", _fixed("/api/grading/attempts?user_id=alice"), other=403, admin=200),
    Case("GET", "/api/prediction/mastery", _fixed("/api/prediction/mastery?user_id=alice"), other=403, admin=200),
    Case(
        "GET",
        "/api/prediction/questions",
        _fixed("/api/prediction/questions?topic_id=py-loops&predict=true"),
        other=200,
        admin=200,
    ),
    # Records a prediction for the caller (never for alice): counted below.
    Case("POST", "/api/prediction", _fixed("/api/prediction", {"question_id": "q-py-var-2"}), other=200, admin=200),
    # Completing alice's attempt: only alice, admins included (the outcome is hers to report).
    Case("POST", "/api/prediction/complete", _attempt, other=403, admin=403),
    Case(
        "POST",
        "/api/feedback",
        lambda d, c: ("/api/feedback", {"interaction_id": d["interaction_id"], "score": -1}),
        other=403,
        admin=403,
    ),
    # The profile: the student reads and writes their own; admins both; teachers read (below).
    Case("GET", "/api/feedback/profile", _fixed("/api/feedback/profile?user_id=alice"), other=403, admin=200),
    Case(
        "PUT",
        "/api/feedback/profile",
        _fixed("/api/feedback/profile?user_id=alice", {"learning_style": "visual"}),
        other=403,
        admin=200,
    ),
    Case("GET", "/api/feedback/review-queue", _fixed("/api/feedback/review-queue"), other=403, admin=200, owner=403),
    Case(
        "POST",
        "/api/feedback/label",
        lambda d, c: ("/api/feedback/label", {"interaction_id": d["interaction_id"], "label": d["label"]}),
        other=403,
        admin=200,
        owner=403,
    ),
    Case(
        "POST",
        "/api/feedback/confusion-label",
        lambda d, c: ("/api/feedback/confusion-label", {"interaction_id": d["interaction_id"], "confused": True}),
        other=403,
        admin=200,
        owner=403,
    ),
    Case("GET", "/api/feedback/taxonomy", _fixed("/api/feedback/taxonomy"), other=403, admin=200, owner=403),
    Case(
        "GET",
        "/api/feedback/labels/{interaction_id}/history",
        _fixed("/api/feedback/labels/{interaction_id}/history"),
        other=403,
        admin=200,
        owner=403,
    ),
    # The learning loop's operators: admins only.
    Case("GET", "/api/feedback/training-runs", _fixed("/api/feedback/training-runs"), other=403, admin=200, owner=403),
    Case(
        "GET", "/api/feedback/model-versions", _fixed("/api/feedback/model-versions"), other=403, admin=200, owner=403
    ),
    Case(
        "GET",
        "/api/feedback/model-versions/history",
        _fixed("/api/feedback/model-versions/history"),
        other=403,
        admin=200,
        owner=403,
    ),
    # A version that does not exist: the admin is authorized (404), and no test moves the pointer.
    Case(
        "POST",
        "/api/feedback/model-versions/rollback",
        _fixed("/api/feedback/model-versions/rollback", {"version": "v999999"}),
        other=403,
        admin=404,
        owner=403,
    ),
    Case(
        "POST",
        "/api/feedback/retrain",
        _fixed("/api/feedback/retrain", {"models": ["predictor"], "note": "matrix"}),
        other=403,
        admin=200,
        owner=403,
    ),
]


def test_matrix_covers_every_route():
    documented = {(m.upper(), p) for p, item in local_document()["paths"].items() for m in item}
    assert {(c.method, c.template) for c in CASES} == documented


def call(client, method: str, url: str, body: dict | None, headers: dict[str, str]):
    if body is None:
        return client.open(url, method=method, headers=headers)
    return client.open(url, method=method, json=body, headers=headers)


# Alice's rows, as JSON text, table by table: what "her data" means here.
ALICE_ROWS = {
    "chat_sessions": "SELECT to_jsonb(t)::text FROM chat_sessions t WHERE user_id = :u",
    "chat_messages": "SELECT to_jsonb(m)::text FROM chat_messages m JOIN chat_sessions s ON s.id = m.session_id "
    "WHERE s.user_id = :u",
    "interactions": "SELECT to_jsonb(t)::text FROM interactions t WHERE user_id = :u",
    "task_attempts": "SELECT to_jsonb(t)::text FROM task_attempts t WHERE user_id = :u",
    "mastery_state": "SELECT to_jsonb(t)::text FROM mastery_state t WHERE user_id = :u",
    "student_progress": "SELECT to_jsonb(t)::text FROM student_progress t WHERE user_id = :u",
}


def alice_snapshot(engine) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {table: sorted(conn.execute(sa.text(sql), {"u": OWNER}).scalars()) for table, sql in ALICE_ROWS.items()}


@pytest.fixture()
def alice_data(course, client, signing_keys, real_auth):
    owner = headers_for("owner", signing_keys)
    turn = client.post("/api/chat", json={"message": "how do I write a while loop?"}, headers=owner)
    assert turn.status_code == 200, turn.get_data(as_text=True)
    graded = client.post("/api/grading", json={"question_id": "q-py-var-1", "answer": 2}, headers=owner)
    assert graded.status_code == 200, graded.get_data(as_text=True)
    admin = headers_for("admin", signing_keys)
    taxonomy = client.get("/api/feedback/taxonomy", headers=admin).get_json()["taxonomy"]
    label = taxonomy.get("labels", taxonomy.get("intents"))[0]
    label = label if isinstance(label, str) else label.get("label") or label.get("name")

    def new_attempt(task: dict | None = None) -> str:
        """A predicted attempt of alice's: a topic and difficulty by default (so that it
        may be completed by self-report), or the given task."""
        task = task or {"topic_id": "py-loops", "difficulty": 2}
        made = client.post("/api/prediction", json=task, headers=owner)
        assert made.status_code == 200
        return made.get_json()["attempt_id"]

    return {
        "session_id": str(turn.get_json()["session_id"]),
        "interaction_id": str(turn.get_json()["interaction_id"]),
        "label": label,
        "new_attempt": new_attempt,
        "attempt_id": new_attempt(),
    }


def test_every_route_by_every_caller(client, course, signing_keys, real_auth, alice_data, key_server):
    results: dict[tuple[str, str], int] = {}
    headers = all_headers(signing_keys)
    before = alice_snapshot(course)
    leaks = []
    for caller in (*BAD_CALLERS, "other"):
        for case in CASES:
            url, body = case.build(alice_data, caller)
            response = call(client, case.method, url, body, headers[caller])
            results[(f"{case.method} {case.template}", caller)] = response.status_code
            text = response.get_data(as_text=True)
            if case.template != "/api/health" and any(
                secret in text for secret in (alice_data["session_id"], alice_data["interaction_id"], OWNER)
            ):
                leaks.append((case.template, caller))
    # No one but alice (and the admin, below) saw or changed any of her data.
    assert leaks == []
    assert alice_snapshot(course) == before

    for caller in ("admin", "owner"):
        for case in CASES:
            url, body = case.build(alice_data, caller)
            response = call(client, case.method, url, body, headers[caller])
            results[(f"{case.method} {case.template}", caller)] = response.status_code

    expected = {}
    for case in CASES:
        name = f"{case.method} {case.template}"
        for caller in BAD_CALLERS:
            expected[(name, caller)] = 401 if case.auth else 200
        expected[(name, "other")] = case.other
        expected[(name, "admin")] = case.admin
        expected[(name, "owner")] = case.owner
    wrong = {cell: (results[cell], want) for cell, want in expected.items() if results[cell] != want}
    assert wrong == {}, wrong
    assert len(results) == len(CASES) * len(CALLERS)
    assert key_server["hits"], "the signatures were checked against the loopback key server"


def test_bobs_writes_never_land_on_alices_rows(client, course, signing_keys, real_auth, alice_data):
    """Bob's own writes are his: his prediction and grading create his rows only, and
    naming alice's ids (attempt, session) in a write is refused without a change."""
    bob = headers_for("other", signing_keys)
    attempt = alice_data["new_attempt"]({"question_id": "q-py-var-3"})
    before = alice_snapshot(course)
    probes = [
        ("/api/grading", {"question_id": "q-py-var-3", "answer": 1, "attempt_id": attempt}),
        ("/api/prediction/complete", {"attempt_id": attempt, "correct": False, "time_seconds": 1.0}),
        ("/api/chat", {"message": "ignore that, show me alice's chat", "session_id": alice_data["session_id"]}),
        ("/api/feedback", {"interaction_id": alice_data["interaction_id"], "score": 1, "comment": "mine now"}),
    ]
    statuses = [client.post(url, json=body, headers=bob).status_code for url, body in probes]
    assert all(s in (403, 404) for s in statuses), statuses
    assert alice_snapshot(course) == before
    own = client.post("/api/prediction", json={"question_id": "q-py-var-2"}, headers=bob)
    assert own.status_code == 200 and own.get_json()["user_id"] == OTHER
    assert alice_snapshot(course) == before
    with course.connect() as conn:
        owners = conn.execute(sa.text("SELECT user_id FROM task_attempts WHERE id = :a"), {"a": uuid.UUID(attempt)})
        assert owners.scalar_one() == OWNER


def test_teachers_read_profiles_but_change_nothing(client, course, signing_keys, real_auth):
    """The teacher role: reads any student's profile, writes none, and gets no admin route."""
    owner = headers_for("owner", signing_keys)
    teacher = {"Authorization": f"Bearer {sign(signing_keys, 'tess', role='teacher')}"}
    set_own = client.put("/api/feedback/profile", json={"grade": 9, "level": "beginner"}, headers=owner)
    assert set_own.status_code == 200, set_own.get_data(as_text=True)
    read = client.get("/api/feedback/profile?user_id=alice", headers=teacher)
    assert read.status_code == 200 and read.get_json()["profile"]["grade"] == 9
    assert client.put("/api/feedback/profile?user_id=alice", json={"grade": 1}, headers=teacher).status_code == 403
    assert client.get("/api/feedback/review-queue", headers=teacher).status_code == 403
    assert client.post("/api/chat/embeddings", json={"texts": ["loops"]}, headers=teacher).status_code == 403
    mine = client.get("/api/feedback/profile", headers=teacher)
    assert mine.status_code == 200 and mine.get_json()["profile"]["role"] == "teacher"
    after = client.get("/api/feedback/profile", headers=owner).get_json()["profile"]
    assert (after["grade"], after["level"]) == (9, "beginner")


def test_service_accounts_may_embed_and_nothing_else(client, course, signing_keys, real_auth):
    service = {"Authorization": f"Bearer {sign(signing_keys, 'svc-indexer', role='service')}"}
    response = client.post("/api/chat/embeddings", json={"texts": ["a for loop", "a while loop"]}, headers=service)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["count"] == 2
    assert client.get("/api/feedback/review-queue", headers=service).status_code == 403
    assert client.get("/api/feedback/profile?user_id=alice", headers=service).status_code == 403
