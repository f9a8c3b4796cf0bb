"""Feedback on replies and the admin label queue, through HTTP, on real SQL."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa


@pytest.fixture()
def interaction(db):
    """A reply alice received, low-confidence so it waits for a human label."""
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES ('alice'), ('bob')"))
        return conn.execute(
            sa.text(
                """INSERT INTO interactions (request_id, user_id, query, intent, intent_confidence, needs_review)
               VALUES ('r1', 'alice', 'how do loops work', 'concept_explanation', 0.42, true)
               RETURNING id"""
            )
        ).scalar_one()


def test_student_rates_own_reply(client, bearer, interaction, db):
    response = client.post(
        "/api/feedback",
        json={"interaction_id": str(interaction), "score": -1, "comment": "too long"},
        headers=bearer("alice"),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["feedback"]["feedback_score"] == -1
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT feedback_score, feedback_comment FROM interactions")).one()
    assert tuple(row) == (-1, "too long")


def test_rating_someone_elses_reply_is_403_and_changes_nothing(client, bearer, interaction, db):
    response = client.post(
        "/api/feedback", json={"interaction_id": str(interaction), "score": 1}, headers=bearer("bob")
    )
    assert response.status_code == 403
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT feedback_score FROM interactions")).scalar() is None


def test_rating_unknown_interaction_is_404(client, bearer, db):
    response = client.post(
        "/api/feedback", json={"interaction_id": str(uuid.uuid4()), "score": 1}, headers=bearer("alice")
    )
    assert response.status_code == 404


def test_admin_sees_queue_and_labels(client, bearer, interaction, db):
    admin = bearer("root", admin=True)
    items = client.get("/api/feedback/review-queue", headers=admin).get_json()["items"]
    assert [i["id"] for i in items] == [str(interaction)]
    response = client.post(
        "/api/feedback/label", json={"interaction_id": str(interaction), "label": "debugging_help"}, headers=admin
    )
    assert response.status_code == 200
    assert response.get_json()["label"]["labelled_by"] == "root"
    assert client.get("/api/feedback/review-queue", headers=admin).get_json()["items"] == []


def test_label_must_be_a_slug(client, bearer, interaction):
    response = client.post(
        "/api/feedback/label",
        json={"interaction_id": str(interaction), "label": "DROP TABLE;"},
        headers=bearer("root", admin=True),
    )
    assert response.status_code == 422
