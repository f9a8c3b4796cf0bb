"""The learning loop's operator routes: runs, versions, a retrain on demand, an audited
rollback; admins only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from shared.artifacts.manifest import build_manifest
from shared.artifacts.store import LocalStore
from shared.artifacts.versions import publish_version, read_current, set_current
from shared.config import get_settings


def _version(root: Path, name: str, parent: str | None, store: LocalStore) -> str:
    folder = root / name
    folder.mkdir()
    (folder / "intent.onnx").write_bytes(name.encode())
    manifest = build_manifest(
        folder,
        version="v1",  # publish_version numbers it
        models={"intent": {"file": "intent.onnx", "extra_files": [], "metrics": {"test_accuracy": 0.9}}},
        parent=parent,
    )
    return publish_version(store, folder, manifest)


@pytest.fixture()
def models(tmp_path, monkeypatch, db):
    store = LocalStore(tmp_path / "models")
    v1 = _version(tmp_path, "build1", None, store)
    v2 = _version(tmp_path, "build2", v1, store)
    set_current(store, v2)
    settings = get_settings()
    monkeypatch.setattr(settings, "model_store_uri", str(tmp_path / "models"))
    return store, v1, v2


def test_versions_runs_and_a_rollback_that_is_audited(client, bearer, models, db):
    store, v1, v2 = models
    admin = bearer("root", admin=True)
    listed = client.get("/api/feedback/model-versions", headers=admin).get_json()
    assert listed["current"] == v2 and [v["version"] for v in listed["versions"]] == [v2, v1]
    assert listed["versions"][0]["status"] == "current" and listed["versions"][0]["parent_version"] == v1
    assert listed["versions"][1]["metrics"]["intent"]["test_accuracy"] == 0.9

    with db.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO training_runs (idempotency_key, trigger, status, gate) VALUES "
                "('k1', 'labels', 'rejected', CAST(:g AS jsonb))"
            ),
            {"g": json.dumps({"reasons": ["golden set 49/50"], "gates": {"intent": {"golden": 0.98}}})},
        )
    runs = client.get("/api/feedback/training-runs", headers=admin).get_json()["runs"]
    assert runs[0]["status"] == "rejected" and runs[0]["gate"]["reasons"] == ["golden set 49/50"]

    moved = client.post(
        "/api/feedback/model-versions/rollback", json={"version": v1, "reason": "v2 regressed"}, headers=admin
    )
    assert moved.status_code == 200 and moved.get_json()["current"] == v1 and moved.get_json()["previous"] == v2
    assert read_current(store).version == v1
    events = client.get("/api/feedback/model-versions/history", headers=admin).get_json()["events"]
    assert [(e["from_version"], e["to_version"], e["actor"], e["reason"]) for e in events] == [
        (v2, v1, "root", "v2 regressed")
    ]


def test_a_rollback_to_nothing_changes_nothing(client, bearer, models):
    store, _, v2 = models
    admin = bearer("root", admin=True)
    missing = client.post("/api/feedback/model-versions/rollback", json={"version": "v99"}, headers=admin)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "unknown_version"
    assert read_current(store).version == v2


def test_students_are_refused_every_operator_route(client, bearer, models):
    store, v1, v2 = models
    student = bearer("alice")
    for method, path, body in (
        ("GET", "/api/feedback/model-versions", None),
        ("GET", "/api/feedback/training-runs", None),
        ("GET", "/api/feedback/model-versions/history", None),
        ("POST", "/api/feedback/model-versions/rollback", {"version": v1}),
        ("POST", "/api/feedback/retrain", {"models": ["intent"]}),
    ):
        assert client.open(path, method=method, json=body, headers=student).status_code == 403
    assert read_current(store).version == v2


def test_a_retrain_on_demand_is_an_outbox_request(client, bearer, models, db):
    r = client.post(
        "/api/feedback/retrain",
        json={"models": ["intent", "predictor"], "note": "new labels"},
        headers=bearer("root", admin=True),
    )
    assert r.status_code == 200
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT id, reason, payload, status FROM retrain_requests")).one()
        run = conn.execute(sa.text("SELECT idempotency_key, trigger FROM training_runs")).one()
    request_id, reason, payload, status = row
    # swept right after the commit: published (locally, straight to the retrain function)
    assert reason == "manual" and status == "published"
    assert tuple(run) == (f"retrain-request:{request_id}", "manual")
    assert payload["models"] == ["intent", "predictor"] and payload["requested_by"] == "root"
    bad = client.post("/api/feedback/retrain", json={"models": ["everything"]}, headers=bearer("root", admin=True))
    assert bad.status_code == 422
