"""The training job end to end on synthetic product attempts (predictor only, small).

Runs in .venv-train (torch). The dataset snapshots are Parquet files written here with
pyarrow, the model store is a temporary folder: nothing touches the shared store.
v1 is the first retrain (no parent); then a good retrain publishes v2, a poisoned one
(shuffled outcomes) is rejected by the gate, and a job killed mid-publish leaves no
version and the pointer where it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model_export.datasets import write_snapshot
from model_export.demo_data import attempts, shuffle_outcomes
from model_export.retrain import JobConfig, run_job
from shared.artifacts.store import LocalStore
from shared.artifacts.versions import list_versions, read_current, read_manifest


def job(tmp: Path, run_id: str, date: str) -> JobConfig:
    return JobConfig(
        run_id=run_id,
        store=str(tmp / "models"),
        datasets=str(tmp / "datasets"),
        date=date,
        models=["predictor", "confusion"],
        prior=False,
        quick=True,
        work_root=tmp,
    )


@pytest.fixture(scope="module")
def with_v1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store whose v1 is a retrain on day 1 (300 students), and that day's snapshot."""
    root = tmp_path_factory.mktemp("retrain-v1")
    write_snapshot(str(root / "datasets"), "2026-11-01", {"attempts": attempts(range(300), seed=1)})
    result = run_job(job(root, "run-v1", "2026-11-01"))
    assert result["status"] == "succeeded", result
    return root


@pytest.fixture()
def store_dir(with_v1: Path, tmp_path: Path) -> Path:
    shutil.copytree(with_v1, tmp_path, dirs_exist_ok=True)
    return tmp_path


def test_first_run_publishes_v1_with_its_snapshot_and_report(with_v1: Path) -> None:
    store = LocalStore(with_v1 / "models")
    assert read_current(store).version == "v1"
    manifest = read_manifest(store, "v1")
    assert manifest["parent"] is None
    assert manifest["dataset"]["date"] == "2026-11-01"
    assert manifest["dataset"]["rows"]["attempts"] == 300 * 25
    assert list(manifest["models"]) == ["predictor"]
    gates = manifest["run"]["gates"]["predictor"]
    assert gates["int8"]["passed"] and gates["previous_test"]["passed"]
    result = json.loads(store.read_bytes("runs/run-v1/result.json"))
    assert result["status"] == "succeeded" and result["version"] == "v1"
    assert result["skipped"] == {"confusion": "no labelled conversations in the snapshot"}
    report = store.read_bytes("runs/run-v1/report.md").decode()
    assert "succeeded" in report and "metrics.svg" in report
    assert store.read_bytes("runs/run-v1/metrics.svg").startswith(b"<svg")


def test_good_retrain_publishes_v2_with_the_gate_numbers(store_dir: Path) -> None:
    day2 = attempts(range(300), seed=1) + attempts(range(300, 450), seed=2, day=2)
    write_snapshot(str(store_dir / "datasets"), "2026-11-02", {"attempts": day2})
    result = run_job(job(store_dir, "run-good", "2026-11-02"))
    assert result["status"] == "succeeded", result
    store = LocalStore(store_dir / "models")
    assert read_current(store).version == "v2"
    manifest = read_manifest(store, "v2")
    assert manifest["parent"] == "v1"
    assert manifest["dataset"]["date"] == "2026-11-02"
    gate = manifest["models"]["predictor"]["gate"]["previous_test"]
    assert gate["passed"] and gate["metric"] == "auc"
    assert gate["split"] == "hash test split of snapshot 2026-11-01"
    assert gate["new"] >= gate["parent"] - 0.02 and gate["parent"] > 0.6
    assert manifest["run"]["gates"]["predictor"]["int8"]["passed"]


def test_poisoned_labels_are_rejected_and_the_pointer_stays(store_dir: Path) -> None:
    day2 = shuffle_outcomes(attempts(range(300), seed=1) + attempts(range(300, 450), seed=2, day=2))
    write_snapshot(str(store_dir / "datasets"), "2026-11-02", {"attempts": day2})
    before = (store_dir / "models" / "current.json").read_bytes()
    result = run_job(job(store_dir, "run-poison", "2026-11-02"))
    assert result["status"] == "rejected", result
    gate = result["gates"]["predictor"]["previous_test"]
    assert not gate["passed"] and gate["drop"] > 0.02, gate
    assert any("predictor: auc" in reason for reason in result["reasons"])
    store = LocalStore(store_dir / "models")
    assert (store_dir / "models" / "current.json").read_bytes() == before
    assert list_versions(store) == ["v1"]
    assert "rejected" in store.read_bytes("runs/run-poison/report.md").decode()


def test_a_job_killed_while_publishing_leaves_no_version(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.artifacts.versions as versions

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt("killed after the version folder was staged")

    write_snapshot(str(store_dir / "datasets"), "2026-11-02", {"attempts": attempts(range(320), seed=3)})
    before = (store_dir / "models" / "current.json").read_bytes()
    monkeypatch.setattr(versions.os, "rename", killed)
    with pytest.raises(KeyboardInterrupt):
        run_job(job(store_dir, "run-killed", "2026-11-02"))
    monkeypatch.undo()
    models = store_dir / "models"
    assert (models / "current.json").read_bytes() == before
    assert list_versions(LocalStore(models)) == ["v1"]
    assert sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) == ["current.json", "runs", "v1"]
    assert not [p for p in models.iterdir() if p.name.startswith(".staging")]
    result = json.loads((models / "runs" / "run-killed" / "result.json").read_text())
    assert result["status"] == "failed" and "KeyboardInterrupt" in result["error"]


def test_after_a_build_the_parents_test_split_is_never_trained_on(tmp_path: Path) -> None:
    from model_export.datasets import load_snapshot
    from model_export.intent_data import load_examples, stratified_split
    from model_export.retrain import Job, intent_split

    write_snapshot(str(tmp_path / "datasets"), "2026-11-01", {"attempts": attempts(range(2), seed=1)})
    job_ = Job(job(tmp_path, "run-held-out", "2026-11-01"))
    job_.parent_manifest = {"build": {"seed": 42}, "models": {"intent": {"data": {"source": "seed queries"}}}}
    held_out = job_.held_out("intent")
    build_test = {t for t, _ in stratified_split(load_examples(), seed=42).test}
    assert held_out == build_test and len(held_out) > 50
    split = intent_split(load_snapshot(str(tmp_path / "datasets")), held_out)
    assert build_test <= {t for t, _ in split.test}
    assert not build_test & {t for t, _ in split.train + split.val}
    # a parent trained by the job used the hash split already: nothing extra held out
    job_.parent_manifest["models"]["intent"]["data"]["dataset_snapshot"] = "2026-10-31"
    assert job_.held_out("intent") == frozenset()
