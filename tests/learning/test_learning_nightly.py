"""The nightly tick: export, the night's retrain request through the outbox, the sweep."""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
from pathlib import Path

import sqlalchemy as sa
from cloudevents.http import CloudEvent

from shared.artifacts.store import LocalStore
from shared.learning.datasets import read_dataset
from shared.learning.nightly import run_nightly
from shared.learning.outbox import LocalPublisher

REPO = Path(__file__).resolve().parents[2]


def requests(db) -> list[tuple]:
    with db.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(sa.text("SELECT reason, status, payload->>'date' FROM retrain_requests ORDER BY id"))
        ]


def test_nightly_exports_then_publishes_the_nights_request_once(ldb, tmp_path):
    store = LocalStore(tmp_path)
    delivered: list[dict] = []
    day = dt.date(2026, 3, 14)

    first = run_nightly(ldb, date=day, store=store, publisher=LocalPublisher(delivered.append))
    assert first["export"] == {
        "interactions": 0,
        "labels": 0,
        "feedback": 0,
        "attempts": 0,
        "generation_log": 0,
        "silver_labels": 0,
        "conversations": 0,
    }
    assert "only the offline provider" in first["silver"]["skipped"]  # the local default: nothing graded
    assert first["retrain_request"] is not None and len(first["sweep"]["published"]) == 1
    assert read_dataset(store, day).manifest["date"] == "2026-03-14"
    (envelope,) = delivered
    attributes = envelope["message"]["attributes"]
    assert attributes["trigger"] == "schedule" and attributes["models"] == "intent,predictor,confusion"

    again = run_nightly(ldb, date=day, store=store, publisher=LocalPublisher(delivered.append))
    assert again["export"] == "exists" and again["retrain_request"] is None
    assert again["sweep"]["published"] == [] and len(delivered) == 1
    assert requests(ldb) == [("schedule", "published", "2026-03-14")]


def test_nightly_still_publishes_when_the_export_is_refused(ldb, tmp_path, monkeypatch):
    from shared.config import get_settings

    settings = get_settings()
    monkeypatch.setattr(settings, "environment", "cloud")
    monkeypatch.setattr(settings, "dataset_pseudonym_key", None)  # the cloud refuses to export
    seen: list[dict] = []
    report = run_nightly(ldb, date="2026-03-15", store=LocalStore(tmp_path), publisher=LocalPublisher(seen.append))
    assert report["export"].startswith("failed")
    body = json.loads(base64.b64decode(seen[0]["message"]["data"]))
    assert body["params"]["dataset_manifest"] is None and body["trigger"] == "schedule"


def test_nightly_function_handles_the_scheduler_tick(ldb, tmp_path, monkeypatch):
    """functions/nightly/main.py with the local defaults: the datasets folder, and the
    local subscriber (the retrain function, in-process)."""
    from shared.config import get_settings

    monkeypatch.setattr(get_settings(), "datasets_uri", str(tmp_path))
    spec = importlib.util.spec_from_file_location("nightly_main", REPO / "functions/nightly/main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tick = CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/t"},
        {"message": {"messageId": "tick-1", "data": "eyJ0YXNrIjoibmlnaHRseSJ9"}},
    )
    module.nightly(tick)
    yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    assert (tmp_path / "manifests" / f"{yesterday.isoformat()}.json").is_file()
    with ldb.connect() as conn:
        run = conn.execute(sa.text("SELECT trigger, params->>'dataset_date' FROM training_runs")).one()
    assert tuple(run) == ("schedule", yesterday.isoformat())
