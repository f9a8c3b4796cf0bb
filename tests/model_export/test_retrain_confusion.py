"""The training job retrains the confusion detector when a snapshot has labelled
conversations (human confusion labels of chat turns, as the export writes them).

Runs in .venv-train (torch). The conversations are simulated (model_export.confusion_data)
and written in the export's layout (`conversations`: conversation_id, label, messages as
JSON [{text, seconds}]); the model store is a temporary folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from model_export.confusion_data import TOPICS, simulate
from model_export.datasets import load_snapshot, split_of, write_snapshot
from model_export.retrain import JobConfig, product_conversations, run_job
from shared.artifacts.store import LocalStore
from shared.artifacts.versions import read_current, read_manifest


def conversation_rows(n: int, seed: int) -> list[dict]:
    return [
        {
            "conversation_id": f"c{seed}-{i}",
            "label": conv.label,
            "messages": json.dumps([{"text": m.text, "seconds": m.seconds_since_previous} for m in conv.messages]),
        }
        for i, conv in enumerate(simulate(n, sorted(TOPICS), seed))
    ]


def test_labelled_conversations_are_split_by_their_id(tmp_path: Path) -> None:
    rows = conversation_rows(200, seed=5)
    write_snapshot(str(tmp_path), "2026-11-01", {"conversations": rows})
    parts = product_conversations(load_snapshot(str(tmp_path)))
    assert sum(len(p) for p in parts.values()) == 200
    expected_test = sum(1 for r in rows if split_of(f"conversation:{r['conversation_id']}") == "test")
    assert len(parts["test"]) == expected_test > 0
    assert {c.scenario for p in parts.values() for c in p} == {"product"}
    assert all(1 <= len(c.messages) <= 3 for p in parts.values() for c in p)


def test_the_job_trains_confusion_from_labelled_conversations_and_gates_it(tmp_path: Path) -> None:
    write_snapshot(str(tmp_path / "datasets"), "2026-11-01", {"conversations": conversation_rows(300, seed=7)})

    def config(run_id: str) -> JobConfig:
        return JobConfig(
            run_id=run_id,
            store=str(tmp_path / "models"),
            datasets=str(tmp_path / "datasets"),
            date="2026-11-01",
            models=["confusion"],
            work_root=tmp_path,
        )

    first = run_job(config("conf-1"))
    assert first["status"] == "succeeded", first
    store = LocalStore(tmp_path / "models")
    manifest = read_manifest(store, "v1")
    entry = manifest["models"]["confusion"]
    assert entry["data"]["dataset_snapshot"] == "2026-11-01"
    counts = entry["data"]["product_conversations"]
    assert sum(counts.values()) == 300 and counts["train"] > counts["test"] > 0
    assert entry["gate"]["int8"]["passed"]
    assert entry["gate"]["previous_test"]["reason"].startswith("no parent model")

    second = run_job(config("conf-2"))  # the same data again: the parent's own test split
    assert second["status"] == "succeeded", second
    gate = second["gates"]["confusion"]["previous_test"]
    assert gate["passed"] and gate["metric"] == "auc" and gate["parent"] > 0.8
    assert "labelled conversations of snapshot 2026-11-01" in gate["split"]
    assert abs(gate["drop"]) <= 0.02
    assert read_current(store).version == "v2"
