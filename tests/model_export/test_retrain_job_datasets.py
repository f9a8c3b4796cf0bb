"""The job's reader of dataset snapshots and its stable split (no torch needed)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from model_export.datasets import (
    SnapshotCorrupt,
    SnapshotMissing,
    list_dates,
    load_snapshot,
    manifest_key,
    split_of,
    write_snapshot,
)
from model_export.demo_data import attempts
from shared.artifacts.store import LocalStore


def test_split_is_a_stable_80_10_10_by_item_id() -> None:
    ids = [f"item-{i}" for i in range(20000)]
    parts = Counter(split_of(i) for i in ids)
    assert abs(parts["train"] / 20000 - 0.8) < 0.01
    assert abs(parts["val"] / 20000 - 0.1) < 0.01 and abs(parts["test"] / 20000 - 0.1) < 0.01
    # the same id always lands in the same part (pinned: a change would move items)
    assert [split_of(i) for i in ids[:12]] == [split_of(i) for i in ids[:12]]
    assert {split_of("interaction:42"), split_of("user:u0001")} <= {"train", "val", "test"}
    assert split_of("user:u0001") == split_of("user:u0001")


def test_snapshot_round_trip_records_what_was_read(tmp_path: Path) -> None:
    labels = [{"interaction_id": "i1", "text": "why is my loop stuck", "label": "debug", "extra": 1}]
    write_snapshot(str(tmp_path), "2026-11-01", {"attempts": attempts(range(3), seed=1, per_user=4)})
    write_snapshot(str(tmp_path), "2026-11-02", {"labels": labels, "attempts": attempts(range(2), seed=1)})
    assert list_dates(str(tmp_path)) == ["2026-11-01", "2026-11-02"]
    snap = load_snapshot(str(tmp_path))  # latest
    assert snap.date == "2026-11-02"
    assert snap.labels[0].text == "why is my loop stuck" and snap.labels[0].label == "debug"
    assert len(snap.attempts) == 50 and snap.attempts[0].user_id == "u0000"
    assert [a.completed_at for a in snap.attempts[:25]] == sorted(a.completed_at for a in snap.attempts[:25])
    record = snap.record()
    assert record["date"] == "2026-11-02" and record["rows"] == {"attempts": 50, "labels": 1}
    assert len(record["manifest_sha256"]) == 64
    assert load_snapshot(str(tmp_path), "2026-11-01").rows == {"attempts": 12}


def test_a_date_without_manifest_is_not_a_snapshot(tmp_path: Path) -> None:
    write_snapshot(str(tmp_path), "2026-11-01", {"attempts": attempts(range(2), seed=1)})
    (tmp_path / manifest_key("2026-11-01")).unlink()  # the export is still writing
    with pytest.raises(SnapshotMissing):
        load_snapshot(str(tmp_path), "2026-11-01")
    with pytest.raises(SnapshotMissing):
        load_snapshot(str(tmp_path))


def test_a_file_that_differs_from_the_manifest_is_refused(tmp_path: Path) -> None:
    write_snapshot(str(tmp_path), "2026-11-01", {"attempts": attempts(range(2), seed=1)})
    manifest = json.loads(LocalStore(tmp_path).read_bytes(manifest_key("2026-11-01")))
    key = manifest["tables"]["attempts"]["path"]
    write_snapshot(str(tmp_path / "other"), "2026-11-01", {"attempts": attempts(range(3), seed=2)})
    (tmp_path / key).write_bytes((tmp_path / "other" / key).read_bytes())
    with pytest.raises(SnapshotCorrupt):
        load_snapshot(str(tmp_path), "2026-11-01")


def test_silver_labels_train_only_in_the_training_part_below_gold(tmp_path: Path) -> None:
    """The job's silver examples: the newest silver label per interaction, only items whose
    hash part is train, never a text a seed query or a human label has, only known intents."""
    from model_export.intent_data import load_examples
    from model_export.retrain import silver_examples

    ids = [f"i{n}" for n in range(200)]
    train_id = next(i for i in ids if split_of(f"interaction:{i}") == "train")
    test_id = next(i for i in ids if split_of(f"interaction:{i}") == "test")
    other_train = next(i for i in ids if split_of(f"interaction:{i}") == "train" and i != train_id)
    third_train = next(i for i in ids if split_of(f"interaction:{i}") == "train" and i not in (train_id, other_train))
    seed_text, _seed_label = load_examples()[0]
    silver = [
        {"interaction_id": train_id, "query": "why is my pointer null", "label": "concept_explanation",
         "confidence": 0.6, "created_at": "2026-11-01T10:00:00"},
        {"interaction_id": train_id, "query": "why is my pointer null", "label": "debugging_help",
         "confidence": 0.9, "created_at": "2026-11-01T11:00:00"},  # newer: wins
        {"interaction_id": test_id, "query": "a test-part query", "label": "debugging_help", "confidence": 0.9,
         "created_at": "2026-11-01T10:00:00"},
        {"interaction_id": other_train, "query": seed_text.upper(), "label": "off_topic", "confidence": 0.9,
         "created_at": "2026-11-01T10:00:00"},
        {"interaction_id": third_train, "query": "something else", "label": "not_an_intent", "confidence": 0.9,
         "created_at": "2026-11-01T10:00:00"},
    ]  # fmt: skip
    write_snapshot(str(tmp_path), "2026-11-01", {"silver_labels": silver})
    snap = load_snapshot(str(tmp_path))
    assert len(snap.silver) == 4 and snap.rows == {"silver_labels": 5}
    used, counts = silver_examples(snap)
    assert used == [("why is my pointer null", "debugging_help")]
    assert counts == {"rows": 4, "used": 1, "not_train_part": 1, "has_gold_label": 1, "unknown_label": 1}
    # a held-out text (the parent's test split) is never trained on either
    assert silver_examples(snap, frozenset({"Why is my pointer null"}))[0] == []


def test_the_job_passes_silver_labels_to_the_intent_trainer_with_their_weight(tmp_path: Path, monkeypatch) -> None:
    import model_export.train_intent as train_intent
    from model_export.retrain import Job, JobConfig

    train_id = next(f"i{n}" for n in range(100) if split_of(f"interaction:i{n}") == "train")
    silver = [{"interaction_id": train_id, "query": "my list index is off by one", "label": "debugging_help",
               "confidence": 0.8, "created_at": "2026-11-01T10:00:00"}]  # fmt: skip
    write_snapshot(str(tmp_path / "datasets"), "2026-11-01", {"silver_labels": silver})
    seen: dict = {}
    monkeypatch.setattr(train_intent, "train", lambda work, **kw: seen.update(kw) or "trained")
    config = JobConfig(run_id="r", store=str(tmp_path / "models"), datasets=str(tmp_path / "datasets"),
                       silver_weight=0.25)  # fmt: skip
    job = Job(config)
    assert job.train_intent(load_snapshot(str(tmp_path / "datasets")), tmp_path / "work") == "trained"
    assert seen["silver"] == [("my list index is off by one", "debugging_help")] and seen["silver_weight"] == 0.25
    assert seen["data"]["silver_labels"]["used"] == 1 and seen["data"]["silver_labels"]["weight"] == 0.25
    assert ("my list index is off by one", "debugging_help") not in seen["split"].test + seen["split"].val
    job.config.silver_weight = 0
    job.train_intent(load_snapshot(str(tmp_path / "datasets")), tmp_path / "work")
    assert seen["silver"] == []
