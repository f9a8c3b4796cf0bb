"""A Pub/Sub message runs the REAL training job in the training venv, end to end.

The retrain function records the run and starts `.venv-train/bin/python -m
model_export.retrain` as a subprocess on a temporary model store and a Parquet snapshot
of synthetic attempts; the first run publishes v1 (predictor only, small), a second
run on poisoned outcomes is rejected by the gate. Statuses, timestamps, gates and
model_versions land in the database. Fails (does not skip) without the training venv.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.http import CloudEvent

from model_export.datasets import write_snapshot
from model_export.demo_data import attempts, shuffle_outcomes
from shared.learning.runs import LocalLauncher

REPO = Path(__file__).resolve().parents[2]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"


def event(message_id: str, params: dict) -> CloudEvent:
    data = base64.b64encode(json.dumps({"trigger": "manual", "params": params}).encode()).decode()
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/test"},
        {"message": {"messageId": message_id, "data": data}},
    )


def test_message_to_published_version_and_to_rejection(db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert TRAIN_PYTHON.exists(), f"the training venv is missing ({TRAIN_PYTHON}): make setup-train"
    spec = importlib.util.spec_from_file_location("retrain_main_e2e", REPO / "functions/retrain/main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    datasets, store = tmp_path / "datasets", tmp_path / "models"
    day1 = attempts(range(300), seed=1)
    write_snapshot(str(datasets), "2026-11-01", {"attempts": day1})
    write_snapshot(
        str(datasets), "2026-11-02", {"attempts": shuffle_outcomes(day1 + attempts(range(300, 450), seed=2))}
    )
    runner = LocalLauncher(
        engine=db, python=TRAIN_PYTHON, store_uri=str(store), datasets_uri=str(datasets), log_dir=tmp_path / "logs"
    )
    monkeypatch.setattr(module, "launcher", lambda: runner)
    params = {"models": ["predictor"], "quick": True, "prior": False}

    def run(key: str, date: str):
        module.retrain(event(key, params | {"date": date}))
        deadline = time.monotonic() + 600
        for watcher in list(runner.watchers.values()):
            watcher.join(max(1.0, deadline - time.monotonic()))
        with db.connect() as conn:
            return conn.execute(sa.text("SELECT * FROM training_runs WHERE idempotency_key = :k"), {"k": key}).one()

    first = run("e2e-1", "2026-11-01")
    log = (tmp_path / "logs" / f"{first.id}.log").read_text()
    assert first.status == "succeeded", log[-3000:]
    assert "progress 1/" in log  # progress lines in the job's log
    assert first.produced_version == "v1" and first.data_snapshot["date"] == "2026-11-01"
    assert first.started_at <= first.finished_at
    assert json.loads((store / "current.json").read_text())["version"] == "v1"

    second = run("e2e-2", "2026-11-02")
    assert second.status == "rejected", (tmp_path / "logs" / f"{second.id}.log").read_text()[-3000:]
    gate = second.gate["gates"]["predictor"]["previous_test"]
    assert not gate["passed"] and gate["parent"] - gate["new"] > 0.02
    assert json.loads((store / "current.json").read_text())["version"] == "v1"
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT version, parent_version, status FROM model_versions")).all()
    assert [tuple(r) for r in rows] == [("v1", None, "current")]
