"""Helpers shared by the learning-loop tests (importable: tests add their folder to sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

TEST_LABELS = ["concept_explanation", "debugging_help", "practice_quiz", "off_topic"]


def publish_fake_version(root: Path, version: str, labels: list[str], weights: bytes) -> None:
    """A version folder with an intent entry, its labels and manifest, and current.json."""
    from shared.artifacts.manifest import dumps, sha256_bytes

    folder = root / version
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "intent.onnx": weights,
        "intent_labels.json": json.dumps({"labels": labels, "temperature": 1.0}).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    manifest = {
        "version": version,
        "files": {n: {"sha256": sha256_bytes(d), "size": len(d)} for n, d in files.items()},
        "models": {"intent": {"file": "intent.onnx", "extra_files": ["intent_labels.json"]}},
        "parent": None,
    }
    raw = dumps(manifest)
    (folder / "manifest.json").write_bytes(raw)
    pointer = {"version": version, "manifest_sha256": sha256_bytes(raw), "updated": None, "previous": None}
    (root / "current.json").write_text(json.dumps(pointer))
