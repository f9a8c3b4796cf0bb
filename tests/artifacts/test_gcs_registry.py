"""A registry serving from GCS (emulator): download, verify, swap, refuse corruption.

This is the cloud path end to end: a function instance whose MODEL_STORE_URI is a
gs:// prefix downloads the version in service into its cache folder, verifies it, and
follows current.json as publishers move it.
"""

import uuid
from pathlib import Path

import pytest

from shared.artifacts import publish_version, set_current
from shared.artifacts.gcs_store import GcsStore
from shared.models.registry import ModelRegistry


class ToyModel:
    """Stands in for a serving class: reads its file, so a load proves the download."""

    def __init__(self, version_dir: Path, entry: dict) -> None:
        self.payload = (Path(version_dir) / entry["file"]).read_bytes()


@pytest.fixture
def store(gcs_client):
    return GcsStore(f"gs://models/reg-{uuid.uuid4().hex[:8]}", client=gcs_client)


def test_registry_follows_the_pointer_and_refuses_a_corrupt_version(store, tmp_path, make_version_folder):
    registry = ModelRegistry(store, cache_dir=tmp_path / "cache", ttl_s=0, classes={"toy": ToyModel})
    assert registry.version is None  # nothing published: no crash, no model

    v1 = publish_version(store, *make_version_folder(tmp_path / "s1", payload=b"first"))
    set_current(store, v1)
    assert registry.get("toy").payload == b"first" and registry.version == "v1"

    v2 = publish_version(store, *make_version_folder(tmp_path / "s2", payload=b"second"))
    store.write_bytes(f"{v2}/toy.onnx", b"secont")  # corrupted after publishing
    set_current(store, v2)
    assert registry.get("toy").payload == b"first"  # v1 stays in service
    assert registry.version == "v1"
    assert "toy.onnx" in (registry.last_error or "")

    v3 = publish_version(store, *make_version_folder(tmp_path / "s3", payload=b"third"))
    set_current(store, v3)
    assert registry.get("toy").payload == b"third" and registry.version == "v3"
    assert (tmp_path / "cache" / "v3" / "toy.onnx").read_bytes() == b"third"
