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
