"""The learning loop end to end, over HTTP, with the real pieces in between.

The local server's app (every function mounted under /api) is served on a loopback port
and called with `requests`; the outbox publishes to the Pub/Sub emulator with the real
client; the messages pulled from it go to the retrain function as the push CloudEvents
Eventarc delivers; the function runs the REAL training job in the training venv
(`.venv-train/bin/python`, passed explicitly as its launcher, with the fast configuration
`quick`, no ASSISTments prior) on the dataset version the real export wrote; the job
publishes into a temporary model store; the chat function serves the new version.

1. students chat (low-confidence turns enter the review queue), 500 past unlabelled
   queries exist, and an admin labels 501 of them through the labels route: the 501st
   crosses the threshold and a `labels` request (intent) reaches Pub/Sub;
2. students complete tasks through the prediction routes: every 5th completion records a
   `tasks` request (predictor), published to Pub/Sub; 7,500 earlier attempts of 300
   students are the training data; the day is exported (the real Parquet export);
3. the `tasks` message runs the job: v2 is published (v1, the served models without a
   predictor, is its parent) and the next chat reply reports v2;
4. the next day's attempts have shuffled outcomes (poisoned); an operator's retrain
   request goes the same way and is rejected by the gate: v2 keeps serving.

The `labels` request is checked on the topic but not run: retraining the intent model
takes minutes even in quick mode (tests/model_export cover its training); this test runs
the predictor, whose quick run takes seconds. Needs the training venv and a published
model version to copy (`make models`); without them it fails, it does not skip.
"""

from __future__ import annotations

import base64
import datetime as dt
import importlib.util
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from cloudevents.http import CloudEvent

from model_export.demo_data import attempts, shuffle_outcomes
from shared.artifacts.manifest import build_manifest
from shared.artifacts.store import LocalStore
from shared.artifacts.versions import fetch_version, publish_version, read_current, set_current
from shared.learning.runs import LocalLauncher

REPO = Path(__file__).resolve().parents[2]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
SERVED_STORE = REPO / ".state" / "models"


def serve_v1_without_predictor(store: Path, work: Path) -> None:
    """The models in service (copied from the repository's store), minus the predictor:
    the retrained predictor is then the first of its line, and its gate compares it with
    its own snapshot's test split from the second run on."""
    source = LocalStore(SERVED_STORE)
    pointer = read_current(source)
    assert pointer is not None, f"no published model version in {SERVED_STORE}: run `make models`"
    folder, manifest = fetch_version(source, pointer.version, work / "cache")
    v1 = work / "v1"
    v1.mkdir(parents=True)
    models = {k: v for k, v in manifest["models"].items() if k != "predictor"}
    for entry in models.values():
        for name in [entry["file"], *entry.get("extra_files", [])]:
            shutil.copy(folder / name, v1 / name)
    extra = {k: manifest[k] for k in ("build",) if k in manifest}
    published = publish_version(
        LocalStore(store), v1, build_manifest(v1, version="v1", models=models, parent=None, extra=extra)
    )
    set_current(LocalStore(store), published)


@pytest.fixture()
def stack(db: Any, pubsub: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The app on a loopback port, over a temporary model store and datasets store, with
    the outbox publishing to the emulator."""
    from werkzeug.serving import make_server

    from local.server import build_app
    from shared.config import reset_settings_cache
    from shared.learning import signals
    from shared.models.registry import reset_registry

    assert TRAIN_PYTHON.exists(), f"the training venv is missing ({TRAIN_PYTHON}): make setup-train"
    models, datasets = tmp_path / "models", tmp_path / "datasets"
    serve_v1_without_predictor(models, tmp_path / "v1-work")
    topic, subscription = pubsub.topic("retrain-requests")
    for name, value in {
        "MODEL_STORE_URI": str(models),
        "DATASETS_URI": str(datasets),
        "MODEL_POINTER_TTL_S": "0",
        "RETRAIN_TOPIC": topic,
    }.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    reset_registry()
    monkeypatch.setattr(signals, "_taxonomy", signals.TaxonomyCache(str(models), ttl_s=0))

    server = make_server("127.0.0.1", 0, build_app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    spec = importlib.util.spec_from_file_location("retrain_main_loop", REPO / "functions/retrain/main.py")
    retrain = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(retrain)
    launcher = LocalLauncher(
        engine=db,
        python=TRAIN_PYTHON,
        store_uri=str(models),
        datasets_uri=str(datasets),
        log_dir=tmp_path / "logs",
        job_overrides={"quick": True, "prior": False},
    )
    monkeypatch.setattr(retrain, "launcher", lambda: launcher)
    try:
        yield {
            "base": f"http://127.0.0.1:{server.server_port}/api",
            "models": models,
            "datasets": datasets,
            "subscription": subscription,
            "retrain": retrain,
            "launcher": launcher,
            "logs": tmp_path / "logs",
        }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        for process in launcher.processes.values():  # never leave a job behind
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
        reset_registry()
        monkeypatch.undo()
        reset_settings_cache()


def push_event(message: Any) -> CloudEvent:
    """What Eventarc hands the function for a message pulled from the subscription."""
    envelope = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": dict(message.attributes),
            "messageId": message.message_id,
            "publishTime": message.publish_time.isoformat(),
        },
        "subscription": "retrain-requests-sub",
    }
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/e2e"}, envelope
    )


def run_to_end(stack: dict[str, Any], message: Any, db: Any) -> Any:
    """Deliver one message and wait for its training job; the run's row."""
    stack["retrain"].retrain(push_event(message))
    for watcher in list(stack["launcher"].watchers.values()):
        watcher.join(timeout=300)
    key = f"retrain-request:{message.attributes['request_id']}"
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM training_runs WHERE idempotency_key = :k"), {"k": key}).one()
    log = (stack["logs"] / f"{row.id}.log").read_text() if (stack["logs"] / f"{row.id}.log").exists() else ""
    assert row.status in ("succeeded", "rejected", "failed"), log[-3000:]
    return row, log


def seed_course_and_history(db: Any, rows: list[dict], *, when: dt.datetime) -> None:
    """Topics of the synthetic world and earlier completed attempts (the training data)."""
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('e2e', 'E2E') ON CONFLICT DO NOTHING"))
        for k in range(10):
            conn.execute(
                sa.text("INSERT INTO topics (id, course_id, title) VALUES (:t, 'e2e', :t) ON CONFLICT DO NOTHING"),
                {"t": f"topic-{k}"},
            )
        users = sorted({r["user_id"] for r in rows})
        conn.execute(sa.text("INSERT INTO users (id) VALUES (:u) ON CONFLICT DO NOTHING"), [{"u": u} for u in users])
        conn.execute(
            sa.text(
                """INSERT INTO task_attempts (user_id, topic_id, difficulty, status, correct, time_seconds,
                                              created_at, completed_at)
                   VALUES (:user_id, :topic_id, :difficulty, 'completed', :correct, :seconds, :at, :at)"""
            ),
            [r | {"correct": bool(r["correct"]), "at": when + dt.timedelta(seconds=i)} for i, r in enumerate(rows)],
        )


def test_students_to_published_version_to_rejected_poison(stack, db, pubsub, bearer) -> None:
    from shared.learning.datasets import export_dataset, open_datasets_store

    base, started = stack["base"], time.monotonic()
    admin = bearer("root", admin=True)
    today = dt.datetime.now(dt.UTC).date()
    midnight = dt.datetime.combine(today, dt.time(), tzinfo=dt.UTC)

    # 1. students chat; low-confidence turns wait for a label
    replies = [
        requests.post(f"{base}/chat", json={"message": m}, headers=bearer(f"student-{i}"), timeout=60).json()
        for i, m in enumerate(["asdf qwerty zxcv", "hmm", "ok so what", "explain recursion with an example"])
    ]
    assert {r["model_versions"]["models"] for r in replies} == {"v1"}
    queue = requests.get(f"{base}/feedback/review-queue?limit=500", headers=admin, timeout=30).json()["items"]
    low = [r for r in replies if r["confidence"] < 0.6]
    assert low, [(r["intent"], r["confidence"]) for r in replies]  # at least one vague turn is below 0.60
    assert {str(r["interaction_id"]) for r in low} <= {str(q["id"]) for q in queue}
    with db.begin() as conn:  # earlier weeks' low-confidence queries, not labelled yet
        conn.execute(sa.text("INSERT INTO users (id) VALUES ('past-student') ON CONFLICT DO NOTHING"))
        conn.execute(
            sa.text(
                """INSERT INTO interactions (request_id, user_id, query, intent, intent_confidence, needs_review)
                   SELECT 'past-' || n, 'past-student', 'why does loop ' || n || ' never end',
                          'concept_explanation', 0.41, true FROM generate_series(1, 500) n"""
            )
        )
        ids = [str(i) for i in conn.execute(sa.text("SELECT id FROM interactions ORDER BY created_at, id")).scalars()]
    labelled = []
    for interaction_id in ids[:501]:
        response = requests.post(
            f"{base}/feedback/label",
            json={"interaction_id": interaction_id, "label": "debugging_help"},
            headers=admin,
            timeout=30,
        )
        assert response.status_code == 200, response.text
        labelled.append(response.json())
    assert labelled[-1]["label"]["verified_labels"] == 501
    assert labelled[-1]["label"]["retrain_request"]["reason"] == "labels_threshold"

    # 2. completed tasks (the 5th records a predictor request) and the earlier attempts
    seed_course_and_history(db, attempts(range(300), seed=1), when=midnight + dt.timedelta(minutes=5))
    for n in range(5):
        attempt = requests.post(
            f"{base}/prediction", json={"topic_id": f"topic-{n}", "difficulty": 3}, headers=bearer("u0001"), timeout=30
        ).json()
        done = requests.post(
            f"{base}/prediction/complete",
            json={"attempt_id": attempt["attempt_id"], "correct": n % 2 == 0, "time_seconds": 30.0},
            headers=bearer("u0001"),
            timeout=30,
        )
        assert done.status_code == 200, done.text
    messages = {m.attributes["trigger"]: m for m in pubsub.pull(stack["subscription"], expected=2, timeout=30)}
    assert set(messages) == {"labels", "tasks"}
    assert messages["labels"].attributes["models"] == "intent"
    assert messages["tasks"].attributes["models"] == "predictor"
    store = open_datasets_store(str(stack["datasets"]))
    exported = export_dataset(db, store, today, today=today + dt.timedelta(days=1))
    assert exported.manifest["tables"]["attempts"]["rows"] == 7505
    assert exported.manifest["tables"]["labels"]["rows"] == 501

    # 3. the tasks request trains the predictor; v2 serves the next reply
    run, log = run_to_end(stack, messages["tasks"], db)
    assert run.status == "succeeded", log[-3000:]
    assert run.produced_version == "v2" and run.data_snapshot["date"] == today.isoformat()
    gate = run.gate["gates"]["predictor"]
    assert gate["int8"]["passed"] and gate["previous_test"]["passed"]
    assert json.loads((stack["models"] / "current.json").read_text())["version"] == "v2"
    reply = requests.post(f"{base}/chat", json={"message": "what is a list"}, headers=bearer("student-0"), timeout=60)
    assert reply.json()["model_versions"]["models"] == "v2"

    # 4. poisoned outcomes the next day, an operator's retrain: rejected, v2 stays
    tomorrow = today + dt.timedelta(days=1)
    poisoned = shuffle_outcomes(attempts(range(300), seed=1) + attempts(range(300, 450), seed=2))
    seed_course_and_history(db, poisoned, when=midnight + dt.timedelta(days=1, minutes=5))
    export_dataset(db, store, tomorrow, today=tomorrow + dt.timedelta(days=1))
    asked = requests.post(f"{base}/feedback/retrain", json={"models": ["predictor"]}, headers=admin, timeout=30)
    assert asked.status_code == 200, asked.text
    (manual,) = pubsub.pull(stack["subscription"], expected=1, timeout=30)
    assert manual.attributes["trigger"] == "manual"
    rejected, log = run_to_end(stack, manual, db)
    assert rejected.status == "rejected", log[-3000:]
    previous = rejected.gate["gates"]["predictor"]["previous_test"]
    assert not previous["passed"] and previous["parent"] - previous["new"] > 0.02
    assert json.loads((stack["models"] / "current.json").read_text())["version"] == "v2"
    reply = requests.post(f"{base}/chat", json={"message": "what is a dict"}, headers=bearer("student-1"), timeout=60)
    assert reply.json()["model_versions"]["models"] == "v2"
    runs = requests.get(f"{base}/feedback/training-runs", headers=admin, timeout=30).json()["runs"]
    assert [r["status"] for r in runs] == ["rejected", "succeeded"]
    print(f"learning loop e2e: {time.monotonic() - started:.1f} s")
