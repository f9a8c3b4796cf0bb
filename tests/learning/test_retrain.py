"""The retrain function: Pub/Sub CloudEvents become training runs, exactly once, and
each run is launched as a training-venv subprocess whose result lands in the database.

The job here is a stand-in interpreter (`fake_python`): it takes the real command line
(`-m model_export.retrain --run <id> --models ... --store ...`), writes the result a
real job writes to the store, and exits. tests/learning/test_retrain_job_e2e.py runs
the real job.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.http import CloudEvent

from shared.learning.runs import BadRetrainMessage, LocalLauncher, parse_pubsub_event

REPO = Path(__file__).resolve().parents[2]

FAKE_JOB = """#!{python}
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
assert args[:2] == ["-m", "model_export.retrain"], args
opts = dict(zip(args[2::2], args[3::2]))
run, store = opts["--run"], Path(opts["--store"])
outcome = os.environ.get("FAKE_OUTCOME", "succeeded")
gate = Path(os.environ["FAKE_GATE_DIR"]) / run
deadline = time.time() + 30
while os.environ.get("FAKE_WAIT") and not gate.exists() and time.time() < deadline:
    time.sleep(0.05)
if outcome == "crash":
    sys.exit(2)
result = {{"run_id": run, "status": outcome, "models": opts["--models"].split(","),
          "snapshot": {{"date": "2026-11-02"}}, "gates": {{"predictor": {{"previous_test":
          {{"passed": outcome != "rejected", "reason": "auc 0.51 vs parent 0.70"}}}}}},
          "reasons": ["predictor: auc 0.51 vs parent 0.70"] if outcome == "rejected" else [],
          "metrics": {{"predictor": {{"test": {{"auc": 0.7}}}}}}, "error": None}}
if outcome == "succeeded":
    result["version"] = "v2"
    result["manifest"] = {{"version": "v2", "parent": "v1", "models": {{"predictor": {{"gate": {{}}}}}}}}
(store / "runs" / run).mkdir(parents=True, exist_ok=True)
(store / "runs" / run / "result.json").write_text(json.dumps(result))
"""


@pytest.fixture(scope="module")
def module():
    spec = importlib.util.spec_from_file_location("retrain_main", REPO / "functions/retrain/main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def launcher(module, db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalLauncher:
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_JOB.format(python=sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("FAKE_GATE_DIR", str(tmp_path))
    runner = LocalLauncher(
        engine=db, python=fake, store_uri=str(tmp_path / "models"), datasets_uri=None, log_dir=tmp_path / "logs"
    )
    monkeypatch.setattr(module, "launcher", lambda: runner)
    return runner


@pytest.fixture()
def retrain(module, launcher):
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


def run_row(db, key: str):
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM training_runs WHERE idempotency_key = :k"), {"k": key}).one()


def wait_all(launcher: LocalLauncher, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        alive = [w for w in list(launcher.watchers.values()) if w.is_alive()]
        if not alive:
            return
        assert time.monotonic() < deadline, "training jobs still running"
        alive[0].join(0.1)


def test_message_runs_one_job_and_redelivery_is_ignored(retrain, launcher, db):
    retrain(event("m-1", {"trigger": "tasks", "params": {"models": ["predictor"]}}))
    retrain(event("m-1", {"trigger": "tasks", "params": {"models": ["predictor"]}}))
    wait_all(launcher)
    assert runs(db) == [("m-1", "tasks", "succeeded")]
    assert len(launcher.watchers) == 1
    row = run_row(db, "m-1")
    assert row.started_at is not None and row.finished_at >= row.started_at >= row.created_at
    assert row.produced_version == "v2" and row.data_snapshot == {"date": "2026-11-02"}
    assert row.metrics == {"predictor": {"test": {"auc": 0.7}}}
    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version, parent_version, status FROM model_versions ORDER BY 1"))
        assert [tuple(v) for v in versions] == [("v1", None, "published"), ("v2", "v1", "current")]
    log = (Path(launcher.log_dir) / f"{row.id}.log").read_text()
    assert log == ""  # the stand-in prints nothing; the real job logs its progress here


def test_the_function_acknowledges_before_the_job_ends(retrain, launcher, db, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_WAIT", "1")
    started = time.monotonic()
    retrain(event("m-fast", {"params": {"models": ["intent"]}}))
    assert time.monotonic() - started < 5
    assert runs(db) == [("m-fast", "manual", "running")]
    (tmp_path / str(run_row(db, "m-fast").id)).touch()
    wait_all(launcher)
    assert runs(db) == [("m-fast", "manual", "succeeded")]


def test_at_most_one_running_run_per_model(retrain, launcher, db, monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_WAIT", "1")
    retrain(event("a", {"params": {"models": ["predictor"]}}))
    retrain(event("b", {"params": {"models": ["predictor", "intent"]}}))
    retrain(event("c", {"params": {"models": ["confusion"]}}))
    assert runs(db) == [("a", "manual", "running"), ("b", "manual", "queued"), ("c", "manual", "running")]
    for key in ("a", "c"):
        (tmp_path / str(run_row(db, key).id)).touch()
    deadline = time.monotonic() + 30
    while run_row(db, "b").status == "queued" and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / str(run_row(db, "b").id)).touch()
    wait_all(launcher)
    assert [r[2] for r in runs(db)] == ["succeeded", "succeeded", "succeeded"]
    assert run_row(db, "b").started_at >= run_row(db, "a").finished_at


def test_rejected_and_crashed_jobs_are_recorded(retrain, launcher, db, monkeypatch):
    monkeypatch.setenv("FAKE_OUTCOME", "rejected")
    retrain(event("bad-model", {"params": {"models": ["predictor"]}}))
    wait_all(launcher)
    monkeypatch.setenv("FAKE_OUTCOME", "crash")
    retrain(event("crash", {"params": {"models": ["predictor"]}}))
    wait_all(launcher)
    rejected, crashed = run_row(db, "bad-model"), run_row(db, "crash")
    assert rejected.status == "rejected" and rejected.produced_version is None
    assert rejected.gate["reasons"] == ["predictor: auc 0.51 vs parent 0.70"]
    assert rejected.finished_at is not None
    assert crashed.status == "failed" and "exited with 2" in crashed.error
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM model_versions")).scalar() == 0


def test_a_missing_training_interpreter_fails_the_run(retrain, launcher, db):
    launcher.python = "/nonexistent/python"
    retrain(event("no-venv", {}))
    row = run_row(db, "no-venv")
    assert row.status == "failed" and "could not start the job" in row.error


def test_malformed_messages_are_dropped_without_raising(retrain, db):
    retrain(event("m-3", raw="%%% not base64"))
    retrain(event("m-4", {"trigger": "because"}))
    assert runs(db) == []


@pytest.mark.parametrize("data", [{}, {"message": {}}, {"message": {"messageId": "x", "data": "WzFd"}}])
def test_parse_rejects_bad_envelopes(data):
    with pytest.raises(BadRetrainMessage):
        parse_pubsub_event(data)


def test_a_republished_outbox_request_is_one_run_whatever_its_message_id():
    """The outbox republishes a row whose publish was not acknowledged: Pub/Sub gives the
    copy a new messageId, but the row id (attribute request_id) keeps it one run."""
    import base64
    import json

    data = base64.b64encode(json.dumps({"trigger": "labels"}).encode()).decode()
    first = parse_pubsub_event({"message": {"messageId": "1", "data": data, "attributes": {"request_id": "42"}}})
    again = parse_pubsub_event({"message": {"messageId": "2", "data": data, "attributes": {"request_id": "42"}}})
    by_hand = parse_pubsub_event({"message": {"messageId": "3", "data": data}})
    assert first.message_id == again.message_id == "retrain-request:42"
    assert by_hand.message_id == "3"
