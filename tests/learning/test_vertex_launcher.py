"""The retrain function on Google Cloud: a run becomes a Vertex AI CustomJob.

The real `google-cloud-aiplatform` client (JobServiceClient, REST transport) talks to a
loopback stub of the JobService REST API (tests/learning/vertex_stub.py) through the
`api_endpoint` client option, with a static-token credential: the URLs, bodies and
responses are the real ones, with no network and no ADC lookup. The job's own outcome
is a `runs/<id>/result.json` written here into a temporary model store, as the job
writes it.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from cloudevents.http import CloudEvent
from google.oauth2.credentials import Credentials
from vertex_stub import VertexStub, vertex_stub

from shared.config import Settings
from shared.learning.launchers import LauncherNotConfigured, choose_launcher
from shared.learning.runs import LaunchDeferred, LocalLauncher
from shared.learning.vertex_jobs import VertexLauncher, reconcile

REPO = Path(__file__).resolve().parents[2]
PROJECT, REGION = "stub-project", "europe-west4"
JOBS_PATH = f"/v1/projects/{PROJECT}/locations/{REGION}/customJobs"


@pytest.fixture(scope="module")
def module():
    spec = importlib.util.spec_from_file_location("retrain_main_vertex", REPO / "functions/retrain/main.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def stub() -> Iterator[VertexStub]:
    with vertex_stub() as running:
        yield running


@pytest.fixture()
def vertex(module, db, stub: VertexStub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> VertexLauncher:
    runner = VertexLauncher(
        project=PROJECT,
        region=REGION,
        image_uri="europe-docker.pkg.dev/stub-project/cc/training@sha256:" + "a" * 64,
        service_account="cc-training@stub-project.iam.gserviceaccount.com",
        machine_type="n1-standard-8",
        store_uri=str(tmp_path / "models"),  # the job's store; gs:// in the cloud
        datasets_uri="gs://stub-bucket/datasets",
        staging_uri="gs://stub-bucket/vertex-staging",
        shared_data_uri="gs://stub-bucket/shared-data/",
        timeout_s=7200,
        api_endpoint=stub.url,
        credentials=Credentials(token="stub-token"),
    )
    monkeypatch.setattr(module, "launcher", lambda: runner)
    return runner


def event(message_id: str, params: dict) -> CloudEvent:
    data = base64.b64encode(json.dumps({"trigger": "manual", "params": params}).encode()).decode()
    return CloudEvent(
        {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/test"},
        {"message": {"messageId": message_id, "data": data}},
    )


def run_row(db, key: str):
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT * FROM training_runs WHERE idempotency_key = :k"), {"k": key}).one()


def write_result(runner: VertexLauncher, run_id: str, result: dict) -> None:
    folder = Path(runner.store_uri) / "runs" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps({"run_id": run_id} | result))


def test_a_message_submits_one_custom_job_built_from_the_settings(module, vertex, stub, db):
    module.retrain(event("m-1", {"models": ["intent"], "date": "2026-11-30", "quick": True}))
    module.retrain(event("m-1", {"models": ["intent"], "date": "2026-11-30", "quick": True}))  # redelivery

    row = run_row(db, "m-1")
    assert row.status == "running" and row.started_at is not None
    assert len(stub.created()) == 1
    assert row.external_job == f"projects/{PROJECT}/locations/{REGION}/customJobs/1000"
    _method, path, headers, body = next(r for r in stub.requests if r[0] == "POST")
    assert path == JOBS_PATH
    assert headers["authorization"] == "Bearer stub-token"
    assert body["displayName"] == f"retrain-{row.id}"
    assert body["labels"] == {"app": "cognitive-core", "run_id": str(row.id)}
    spec = body["jobSpec"]
    assert spec["serviceAccount"] == "cc-training@stub-project.iam.gserviceaccount.com"
    assert spec["scheduling"]["timeout"] == "7200s"
    assert spec["baseOutputDirectory"] == {"outputUriPrefix": "gs://stub-bucket/vertex-staging"}
    (pool,) = spec["workerPoolSpecs"]
    assert pool["machineSpec"] == {"machineType": "n1-standard-8"} and pool["replicaCount"] == "1"
    container = pool["containerSpec"]
    assert container["imageUri"] == vertex.image_uri
    assert container["command"] == ["python", "-m", "model_export.retrain"]
    assert container["args"] == [
        "--run",
        str(row.id),
        "--models",
        "intent",
        "--store",
        vertex.store_uri,
        "--datasets",
        "gs://stub-bucket/datasets",
        "--date",
        "2026-11-30",
        "--quick",
    ]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MODEL_STORE_URI"] == vertex.store_uri and env["COGNITIVE_ENV"] == "cloud"
    assert env["SHARED_DATA_DIR"] == "/gcs/stub-bucket/shared-data"  # the ASSISTments prior, mounted


def test_an_ended_job_is_recorded_from_the_result_it_wrote(module, vertex, stub, db):
    module.retrain(event("ok", {"models": ["predictor"]}))
    row = run_row(db, "ok")
    assert reconcile(db, vertex) == {}  # still pending: nothing recorded
    assert run_row(db, "ok").status == "running"

    manifest = {"version": "v2", "parent": "v1", "models": {"predictor": {"gate": {"auc": 0.7}}}}
    write_result(
        vertex,
        str(row.id),
        {"status": "succeeded", "version": "v2", "manifest": manifest, "snapshot": {"date": "2026-11-30"}},
    )
    stub.set_state(row.external_job, "JOB_STATE_SUCCEEDED")
    assert reconcile(db, vertex) == {str(row.id): "succeeded"}
    done = run_row(db, "ok")
    assert done.status == "succeeded" and done.produced_version == "v2" and done.finished_at is not None
    from shared.learning.operators import list_runs

    with db.connect() as conn:
        assert list_runs(conn, 10)[0]["external_job"] == row.external_job  # what operators see
    assert done.data_snapshot == {"date": "2026-11-30"}
    with db.connect() as conn:
        versions = conn.execute(sa.text("SELECT version, status FROM model_versions ORDER BY 1")).all()
    assert [tuple(v) for v in versions] == [("v1", "published"), ("v2", "current")]


def test_a_job_that_fails_without_a_result_marks_the_run_failed(module, vertex, stub, db):
    module.retrain(event("oom", {"models": ["intent"]}))
    row = run_row(db, "oom")
    write_result(vertex, str(row.id), {"status": "running"})  # the job died mid-training
    stub.set_state(row.external_job, "JOB_STATE_FAILED", error="The replica workerpool0-0 ran out of memory.")
    assert reconcile(db, vertex) == {str(row.id): "failed"}
    failed = run_row(db, "oom")
    assert failed.status == "failed" and "JOB_STATE_FAILED" in failed.error and "out of memory" in failed.error
    assert failed.produced_version is None


def test_a_rejected_run_is_rejected_and_the_next_message_records_it(module, vertex, stub, db):
    module.retrain(event("poison", {"models": ["intent"]}))
    module.retrain(event("waits", {"models": ["intent"]}))  # same model: waits for the first
    first = run_row(db, "poison")
    assert run_row(db, "waits").status == "queued" and len(stub.created()) == 1
    write_result(vertex, str(first.id), {"status": "rejected", "reasons": ["intent: 12 golden queries wrong"]})
    stub.set_state(first.external_job, "JOB_STATE_SUCCEEDED")  # the job ran fine; its gate said no

    module.retrain(event("later", {"models": ["predictor"]}))  # any message reconciles first
    rejected = run_row(db, "poison")
    assert rejected.status == "rejected" and rejected.gate["reasons"] == ["intent: 12 golden queries wrong"]
    assert run_row(db, "waits").status == "running" and run_row(db, "later").status == "running"
    assert len(stub.created()) == 3


def test_vertex_unavailable_requeues_the_run_and_the_redelivery_launches_it(module, vertex, stub, db):
    stub.fail_next(503, "UNAVAILABLE")
    with pytest.raises(LaunchDeferred):
        module.retrain(event("flaky", {"models": ["intent"]}))
    row = run_row(db, "flaky")
    assert row.status == "queued" and row.started_at is None and row.external_job is None
    module.retrain(event("flaky", {"models": ["intent"]}))  # Pub/Sub redelivers
    assert run_row(db, "flaky").status == "running" and run_row(db, "flaky").external_job


def test_a_refused_job_fails_the_run_visibly(module, vertex, stub, db):
    stub.fail_next(403, "PERMISSION_DENIED")
    module.retrain(event("denied", {"models": ["intent"]}))
    row = run_row(db, "denied")
    assert row.status == "failed" and "Vertex AI refused the job" in row.error and row.finished_at is not None


def test_a_launch_interrupted_before_the_job_was_recorded_fails_after_the_grace(vertex, db):
    with db.begin() as conn:
        conn.execute(
            sa.text(
                """INSERT INTO training_runs (idempotency_key, trigger, status, started_at)
                   VALUES ('lost', 'manual', 'running', now() - interval '1 hour'),
                          ('young', 'manual', 'running', now())"""
            )
        )
    recorded = reconcile(db, vertex)
    assert list(recorded.values()) == ["failed"]
    assert "never submitted" in run_row(db, "lost").error
    assert run_row(db, "young").status == "running"


# --- which launcher: fail closed in the cloud ----------------------------------------------

CLOUD_ENV = {
    "COGNITIVE_ENV": "cloud",
    "GOOGLE_CLOUD_PROJECT": "cc-prod",
    "GOOGLE_CLOUD_REGION": REGION,
    "TRAINING_IMAGE_URI": "europe-docker.pkg.dev/cc-prod/cc/training:1",
    "TRAINING_SERVICE_ACCOUNT": "cc-training@cc-prod.iam.gserviceaccount.com",
    "MODEL_STORE_URI": "gs://cc-prod-models/models",
    "DATASETS_URI": "gs://cc-prod-data/datasets",
    "TRAINING_MACHINE_TYPE": "n1-highmem-4",
}


def settings_with(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in (*CLOUD_ENV, "TRAINING_STAGING_URI", "VERTEX_API_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_cloud_uses_vertex_with_its_settings(db, monkeypatch):
    runner = choose_launcher(db, settings_with(monkeypatch, CLOUD_ENV))
    assert isinstance(runner, VertexLauncher)
    assert (runner.project, runner.region, runner.machine_type) == ("cc-prod", REGION, "n1-highmem-4")
    assert runner.store_uri == "gs://cc-prod-models/models" and runner.datasets_uri == "gs://cc-prod-data/datasets"


def test_the_cloud_without_the_vertex_settings_refuses_and_names_them(db, monkeypatch):
    env = {k: v for k, v in CLOUD_ENV.items() if k not in ("TRAINING_IMAGE_URI", "TRAINING_SERVICE_ACCOUNT")}
    env["MODEL_STORE_URI"] = "/srv/models"
    with pytest.raises(LauncherNotConfigured) as refused:
        choose_launcher(db, settings_with(monkeypatch, env))
    text = str(refused.value)
    for name in ("TRAINING_IMAGE_URI", "TRAINING_SERVICE_ACCOUNT", "MODEL_STORE_URI"):
        assert name in text
    assert "DATASETS_URI" not in text
    # an image configured locally means "use Vertex AI" as well: incomplete, refused
    with pytest.raises(LauncherNotConfigured):
        choose_launcher(db, settings_with(monkeypatch, {"TRAINING_IMAGE_URI": "img:1"}))


def test_locally_the_job_is_a_subprocess(db, monkeypatch):
    runner = choose_launcher(db, settings_with(monkeypatch, {"COGNITIVE_ENV": "local"}))
    assert isinstance(runner, LocalLauncher)


def test_the_function_in_a_half_configured_cloud_keeps_the_run_queued(module, db, monkeypatch):
    settings_with(monkeypatch, {"COGNITIVE_ENV": "cloud", "GOOGLE_CLOUD_PROJECT": "cc-prod"})
    from shared.learning import launchers

    monkeypatch.setattr(module, "launcher", lambda: launchers.choose_launcher(db, Settings()))
    with pytest.raises(LauncherNotConfigured):
        module.retrain(event("nowhere", {"models": ["intent"]}))
    assert run_row(db, "nowhere").status == "queued"


def test_the_reconcile_tick_records_ended_jobs_and_creates_no_run(module, vertex, stub, db):
    module.retrain(event("first", {"models": ["intent"]}))
    module.retrain(event("second", {"models": ["intent"]}))
    first = run_row(db, "first")
    write_result(vertex, str(first.id), {"status": "rejected", "reasons": ["intent: golden"]})
    stub.set_state(first.external_job, "JOB_STATE_SUCCEEDED")
    tick = base64.b64encode(json.dumps({"trigger": "reconcile"}).encode()).decode()
    module.retrain(
        CloudEvent(
            {"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//cloudscheduler"},
            {"message": {"messageId": "tick-1", "data": tick, "attributes": {"trigger": "reconcile"}}},
        )
    )
    assert run_row(db, "first").status == "rejected" and run_row(db, "second").status == "running"
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM training_runs")).scalar() == 2  # no run for the tick
