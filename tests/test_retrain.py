"""The retrain function: Pub/Sub CloudEvents become training runs, exactly once."""

from __future__ import annotations

import base64
import importlib.util
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.http import CloudEvent

from shared.learning.runs import BadRetrainMessage, parse_pubsub_event

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def retrain():
    spec = importlib.util.spec_from_file_location("retrain_main", REPO / "functions/retrain/main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.retrain


def event(message_id: str, body: object | None = None, raw: str | None = None) -> CloudEvent:
    data = raw if raw is not None else base64.b64encode(json.dumps(body or {}).encode()).decode()
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/test"},
        {"message": {"messageId": message_id, "data": data}},
    )


def runs(db) -> list[tuple]:
    with db.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.text("SELECT idempotency_key, trigger, status FROM training_runs ORDER BY created_at")
            )
        ]


def test_message_creates_one_queued_run_and_redelivery_is_ignored(retrain, db):
    retrain(event("m-1", {"trigger": "tasks", "params": {"threshold": 5}}))
    retrain(event("m-1", {"trigger": "tasks", "params": {"threshold": 5}}))
    retrain(event("m-2", {"trigger": "schedule"}))
    assert runs(db) == [("m-1", "tasks", "queued"), ("m-2", "schedule", "queued")]


def test_malformed_messages_are_dropped_without_raising(retrain, db):
    retrain(event("m-3", raw="%%% not base64"))
    retrain(event("m-4", {"trigger": "because"}))
    assert runs(db) == []


@pytest.mark.parametrize("data", [{}, {"message": {}}, {"message": {"messageId": "x", "data": "WzFd"}}])
def test_parse_rejects_bad_envelopes(data):
    with pytest.raises(BadRetrainMessage):
        parse_pubsub_event(data)
