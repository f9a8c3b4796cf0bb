"""The retrain outbox against the Pub/Sub emulator with the real client, and the local
publisher that delivers to the retrain function in-process."""

from __future__ import annotations

import base64
import json
import threading
import uuid

import pytest
import sqlalchemy as sa

from shared.learning.outbox import (
    LocalPublisher,
    OutboxError,
    OutboxMessage,
    PubSubPublisher,
    default_publisher,
    sweep,
    sweep_after_commit,
)
from shared.learning.runs import parse_pubsub_event


def add_request(db, reason: str = "tasks_threshold", **payload) -> int:
    payload = payload or {"threshold": 5, "trigger": "tasks", "models": ["predictor"]}
    with db.begin() as conn:
        return conn.execute(
            sa.text("INSERT INTO retrain_requests (reason, payload) VALUES (:r, CAST(:p AS jsonb)) RETURNING id"),
            {"r": reason, "p": json.dumps(payload)},
        ).scalar_one()


def rows(db) -> list[dict]:
    with db.connect() as conn:
        result = conn.execute(
            sa.text(
                """SELECT id, status, message_id, publish_attempts, last_error, published_at
                     FROM retrain_requests ORDER BY id"""
            )
        ).mappings()
        return [dict(r) for r in result]


# --- the message -------------------------------------------------------------------------


def test_message_shape_is_what_the_retrain_function_reads():
    payload = {"trigger": "labels", "models": ["intent"], "threshold": 500}
    message = OutboxMessage.from_row({"id": 42, "reason": "labels_threshold", "payload": payload})
    assert message.attributes == {
        "trigger": "labels",
        "models": "intent",
        "request_id": "42",
        "reason": "labels_threshold",
    }
    envelope = message.push_envelope("m-1")
    assert set(envelope["message"]) >= {"data", "attributes", "messageId", "publishTime"}
    request = parse_pubsub_event(envelope)
    # the run's idempotency key is the outbox row (attribute request_id), not the delivery
    assert request.trigger == "labels" and request.message_id == f"retrain-request:{message.attributes['request_id']}"
    assert request.params["request_id"] == 42 and request.params["threshold"] == 500
    # a student's uid in the payload stays in the database
    tasks = OutboxMessage.from_row(
        {"id": 3, "reason": "tasks_threshold", "payload": {"threshold": 5, "last_user_id": "alice"}}
    )
    assert b"alice" not in tasks.data and tasks.attributes["models"] == "predictor"
    # rows without a trigger in their payload get their reason's
    nightly = OutboxMessage.from_row({"id": 7, "reason": "schedule", "payload": {"date": "2026-11-30"}})
    assert nightly.attributes["trigger"] == "schedule" and nightly.attributes["models"] == "intent,predictor,confusion"


# --- Pub/Sub (emulator, real client) ----------------------------------------------------------


def test_pending_requests_are_published_then_marked(pubsub, db):
    topic, subscription = pubsub.topic(f"retrain-{uuid.uuid4().hex[:8]}")
    first = add_request(db)
    second = add_request(db, "labels_threshold", trigger="labels", models=["intent"], threshold=500)

    result = sweep(db, PubSubPublisher(topic), timeout=20)
    assert [p["id"] for p in result.published] == [first, second] and result.failed == []

    after = rows(db)
    assert [r["status"] for r in after] == ["published", "published"]
    assert all(r["message_id"] and r["published_at"] and r["publish_attempts"] == 1 for r in after)

    messages = sorted(pubsub.pull(subscription, 2), key=lambda m: int(m.attributes["request_id"]))
    assert [m.message_id for m in messages] == [r["message_id"] for r in after]
    assert dict(messages[0].attributes) == {
        "trigger": "tasks",
        "models": "predictor",
        "request_id": str(first),
        "reason": "tasks_threshold",
    }
    assert dict(messages[1].attributes)["models"] == "intent"
    body = json.loads(messages[1].data)
    assert body["trigger"] == "labels" and body["params"]["request_id"] == second

    # A second sweep has nothing to do: nothing is published twice.
    assert sweep(db, PubSubPublisher(topic), timeout=20).published == []
    assert pubsub.pull(subscription, 1, timeout=2) == []


def test_publish_failure_leaves_the_row_pending_and_the_next_sweep_retries(pubsub, db):
    name = f"retrain-{uuid.uuid4().hex[:8]}"
    topic = pubsub.topic_path(name)  # not created yet: publishing fails with NotFound
    request_id = add_request(db)

    failed = sweep(db, PubSubPublisher(topic), timeout=20)
    assert failed.published == [] and [f["id"] for f in failed.failed] == [request_id]
    (row,) = rows(db)
    assert row["status"] == "pending" and row["message_id"] is None
    assert row["publish_attempts"] == 1 and "NotFound" in row["last_error"]

    topic, subscription = pubsub.topic(name)
    retried = sweep(db, PubSubPublisher(topic), timeout=20)
    assert [p["id"] for p in retried.published] == [request_id]
    (row,) = rows(db)
    assert row["status"] == "published" and row["publish_attempts"] == 2 and row["last_error"] is None
    (message,) = pubsub.pull(subscription, 1)
    assert message.attributes["request_id"] == str(request_id)


def test_pulled_message_drives_the_retrain_function(pubsub, db):
    """End to end on the wire: what the sweep publishes, pushed as Eventarc would push
    it, becomes one queued training run."""
    from cloudevents.http import CloudEvent

    from shared.learning.outbox import _retrain_handler

    topic, subscription = pubsub.topic(f"retrain-{uuid.uuid4().hex[:8]}")
    add_request(db)
    sweep(db, PubSubPublisher(topic), timeout=20)
    (message,) = pubsub.pull(subscription, 1)
    envelope = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
        }
    }
    _retrain_handler()(CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//t"}, envelope))
    with db.connect() as conn:
        run = conn.execute(sa.text("SELECT idempotency_key, trigger, params FROM training_runs")).one()
    key = f"retrain-request:{message.attributes['request_id']}"
    assert run[0] == key and run[1] == "tasks" and run[2]["threshold"] == 5


def test_concurrent_sweeps_publish_each_row_once(pubsub, db):
    topic, subscription = pubsub.topic(f"retrain-{uuid.uuid4().hex[:8]}")
    ids = [add_request(db, threshold=5 * (i + 1)) for i in range(6)]
    results = []

    def run() -> None:
        results.append(sweep(db, PubSubPublisher(topic), timeout=20))

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    published = sorted(p["id"] for r in results for p in r.published)
    assert published == ids
    messages = pubsub.pull(subscription, 6)
    assert sorted(int(m.attributes["request_id"]) for m in messages) == ids
    assert pubsub.pull(subscription, 1, timeout=2) == []


# --- local delivery ----------------------------------------------------------------------


def test_local_publisher_delivers_to_the_retrain_function_in_process(db, monkeypatch):
    monkeypatch.delenv("RETRAIN_TOPIC", raising=False)
    publisher = default_publisher()
    assert isinstance(publisher, LocalPublisher)
    request_id = add_request(db)
    result = sweep(db, publisher)
    assert result.published == [{"id": request_id, "message_id": f"local-{request_id}"}]
    with db.connect() as conn:
        run = conn.execute(sa.text("SELECT idempotency_key, trigger FROM training_runs")).one()
    assert tuple(run) == (f"retrain-request:{request_id}", "tasks")
    (envelope,) = publisher.delivered
    assert envelope["message"]["attributes"]["request_id"] == str(request_id)
    assert json.loads(base64.b64decode(envelope["message"]["data"]))["request_id"] == request_id


def test_local_delivery_failure_keeps_the_row_pending(db):
    def broken(envelope: dict) -> None:
        raise RuntimeError("subscriber down")

    request_id = add_request(db)
    assert sweep(db, LocalPublisher(broken)).failed == [{"id": request_id, "error": "RuntimeError: subscriber down"}]
    assert rows(db)[0]["status"] == "pending"
    seen: list[dict] = []
    assert sweep(db, LocalPublisher(seen.append)).published[0]["id"] == request_id
    assert seen[0]["message"]["messageId"] == f"local-{request_id}"


def test_sweep_after_commit_never_raises(db, caplog):
    class Exploding:
        def publish(self, message, *, timeout):
            raise AssertionError("not reached")

    broken_engine = sa.create_engine("postgresql+pg8000://nobody@127.0.0.1:1/none")
    assert sweep_after_commit(broken_engine, Exploding()) is None
    assert "outbox sweep after commit failed" in caplog.text


def test_the_cloud_without_a_topic_refuses_local_delivery(monkeypatch):
    from shared.config import get_settings

    settings = get_settings()
    monkeypatch.setattr(settings, "environment", "cloud")
    monkeypatch.setattr(settings, "retrain_topic", None)
    with pytest.raises(OutboxError):
        default_publisher()
    monkeypatch.setattr(settings, "retrain_topic", "projects/p/topics/t")
    assert isinstance(default_publisher(), PubSubPublisher)
    assert default_publisher() is default_publisher()  # one client per topic and process
    with pytest.raises(OutboxError):
        PubSubPublisher("retrain-requests")
