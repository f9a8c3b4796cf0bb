"""Human confusion labels of chat turns, and the labelled conversations the export writes
for the confusion detector (the turn and up to two student messages before it)."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from shared.artifacts.store import LocalStore
from shared.learning.datasets import export_dataset, read_dataset


def session_turns(db, texts_and_gaps: list[tuple[str, float]]) -> list[str]:
    """A chat session of alice: one interaction per (query, seconds after the previous)."""
    start = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES ('alice'), ('root') ON CONFLICT DO NOTHING"))
        session = conn.execute(
            sa.text("INSERT INTO chat_sessions (user_id) VALUES ('alice') RETURNING id")
        ).scalar_one()
        ids, at = [], start
        for text, gap in texts_and_gaps:
            at = at + dt.timedelta(seconds=gap)
            ids.append(
                str(
                    conn.execute(
                        sa.text(
                            """INSERT INTO interactions (request_id, user_id, session_id, query, created_at,
                                                         confusion_score, is_confused)
                               VALUES ('r', 'alice', :s, :q, :at, 0.2, false) RETURNING id"""
                        ),
                        {"s": session, "q": text, "at": at},
                    ).scalar_one()
                )
            )
    return ids


def test_an_admin_labels_a_turn_and_the_export_writes_its_conversation(db, client, bearer, tmp_path):
    ids = session_turns(
        db,
        [
            ("what is a closure", 0),
            ("ok and a decorator?", 30),
            ("wait what, I don't get it, mail me: bob@example.com", 12),
            ("so a closure keeps the variable?", 200),
        ],
    )
    admin = bearer("root", admin=True)
    response = client.post(
        "/api/feedback/confusion-label", json={"interaction_id": ids[2], "confused": True}, headers=admin
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()["confusion_label"]
    assert body["confused"] is True and body["labelled_by"] == "root" and body["model_said_confused"] is False
    first = client.post(
        "/api/feedback/confusion-label", json={"interaction_id": ids[0], "confused": False}, headers=admin
    )
    assert first.status_code == 200
    # students cannot label; an unknown turn is a 404; the body is strict
    assert client.post("/api/feedback/confusion-label", json={"interaction_id": ids[1], "confused": True},
                       headers=bearer("alice")).status_code == 403  # fmt: skip
    missing = {"interaction_id": "00000000-0000-0000-0000-000000000000", "confused": True}
    assert client.post("/api/feedback/confusion-label", json=missing, headers=admin).status_code == 404
    bad = {"interaction_id": ids[1], "confused": "yes"}
    assert client.post("/api/feedback/confusion-label", json=bad, headers=admin).status_code == 422

    today = dt.datetime.now(dt.UTC).date()
    store = LocalStore(tmp_path / "datasets")
    export_dataset(db, store, today, today=today + dt.timedelta(days=1))
    rows = {r["conversation_id"]: r for r in read_dataset(store, today).tables["conversations"].to_pylist()}
    assert set(rows) == {ids[0], ids[2]}  # only labelled turns; the later turn is not in the window
    confused = rows[ids[2]]
    assert confused["label"] == 1 and confused["model_confused"] is False
    assert json.loads(confused["messages"]) == [
        {"text": "what is a closure", "seconds": None},
        {"text": "ok and a decorator?", "seconds": 30.0},
        {"text": "wait what, I don't get it, mail me: <email>", "seconds": 12.0},
    ]
    assert json.loads(rows[ids[0]]["messages"]) == [{"text": "what is a closure", "seconds": None}]
    assert rows[ids[0]]["label"] == 0
    assert rows[ids[2]]["labeller_pseudonym"] not in (None, "root")


def test_the_window_keeps_the_last_three_and_the_gap_before_them(db, client, bearer, tmp_path):
    ids = session_turns(db, [("one", 0), ("two", 5), ("three", 7), ("four", 11)])
    client.post("/api/feedback/confusion-label", json={"interaction_id": ids[3], "confused": True},
                headers=bearer("root", admin=True))  # fmt: skip
    today = dt.datetime.now(dt.UTC).date()
    store = LocalStore(tmp_path / "datasets")
    export_dataset(db, store, today, today=today + dt.timedelta(days=1))
    (row,) = read_dataset(store, today).tables["conversations"].to_pylist()
    assert json.loads(row["messages"]) == [
        {"text": "two", "seconds": 5.0},  # its gap comes from the fourth-last message
        {"text": "three", "seconds": 7.0},
        {"text": "four", "seconds": 11.0},
    ]
