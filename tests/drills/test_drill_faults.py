"""Fault drills: the database connection dies in the middle of a write.

The request's own Postgres backend is terminated (as a server shutdown or crash does
to every backend, SQLSTATE 57P01) just before its transaction's later statement runs.
Expected: 503 `database_unavailable` with Retry-After and the request id, nothing of
the half-done transaction in the database, and the very next request succeeds in the
same process (the pool pre-pings and opens a fresh connection; no restart).

The other fault drills of issue 12 live beside the code they exercise and are part of
`make drills` (docs/drills.md): a corrupt or half-uploaded model version is refused and
the previous one keeps serving (tests/models/test_versions.py), the embedding back end
down → full-text retrieval (tests/rag, tests/chat).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa


@pytest.fixture()
def kill_backend_before(engine, monkeypatch):
    """Arm: the first statement containing `marker` finds its connection terminated."""
    armed: dict[str, object] = {"marker": None, "fired": 0}
    seen: list[str] = []
    armed["seen"] = seen

    def before(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split())[:80])
        marker = armed["marker"]
        if marker and marker in statement:
            armed["marker"] = None
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            killer = sa.create_engine(engine.url, poolclass=sa.NullPool)
            with killer.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            killer.dispose()
            armed["fired"] = int(armed["fired"]) + 1

    sa.event.listen(engine, "before_cursor_execute", before)
    yield armed
    sa.event.remove(engine, "before_cursor_execute", before)


def count(engine, sql: str, **params) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def test_connection_lost_mid_grading_is_503_with_no_partial_rows(client, bearer, course, kill_backend_before):
    alice = bearer("alice")
    kill_backend_before["marker"] = "UPDATE mastery_state"  # after the attempt row is written
    response = client.post(
        "/api/grading", json={"question_id": "q-py-var-1", "answer": 1}, headers={**alice, "X-Request-Id": "drill-db-1"}
    )
    assert kill_backend_before["fired"] == 1
    before_kill = kill_backend_before["seen"][:-1]
    assert any(s.startswith("INSERT INTO task_attempts") for s in before_kill), before_kill  # a half-done write
    assert response.status_code == 503, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "database_unavailable" and error["request_id"] == "drill-db-1"
    assert response.headers["Retry-After"] == "5"
    assert "Traceback" not in response.get_data(as_text=True)
    assert count(course, "SELECT count(*) FROM task_attempts WHERE user_id = 'alice'") == 0
    assert count(course, "SELECT count(*) FROM mastery_state WHERE user_id = 'alice'") == 0

    again = client.post("/api/grading", json={"question_id": "q-py-var-1", "answer": 1}, headers=alice)
    assert again.status_code == 200, again.get_data(as_text=True)
    assert count(course, "SELECT count(*) FROM task_attempts WHERE user_id = 'alice'") == 1


def test_connection_lost_mid_prediction_and_feedback_then_recovers(client, bearer, course, kill_backend_before):
    alice = bearer("alice")
    kill_backend_before["marker"] = "INSERT INTO task_attempts"
    lost = client.post("/api/prediction", json={"topic_id": "py-loops", "difficulty": 2}, headers=alice)
    assert lost.status_code == 503 and lost.get_json()["error"]["request_id"] == lost.headers["X-Request-Id"]
    assert count(course, "SELECT count(*) FROM task_attempts WHERE user_id = 'alice'") == 0
    ok = client.post("/api/prediction", json={"topic_id": "py-loops", "difficulty": 2}, headers=alice)
    assert ok.status_code == 200
    # Reads recover too: the pool replaced the dead connection.
    assert client.get("/api/grading/attempts", headers=alice).status_code == 200
