"""Fixtures for the artifact store tests: a staged version folder, a GCS emulator."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.loopback import free_port
from shared.artifacts.manifest import build_manifest


def make_version_folder(folder: Path, *, payload: bytes = b"model-bytes", version: str = "v1"):
    """A flat version folder with one fake model and its manifest (not written)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "toy.onnx").write_bytes(payload)
    (folder / "toy_labels.json").write_text('{"labels": ["a", "b"]}')
    models = {"toy": {"file": "toy.onnx", "extra_files": ["toy_labels.json"], "metrics": {}}}
    return folder, build_manifest(folder, version=version, models=models, parent=None)


@pytest.fixture(name="make_version_folder")
def make_version_folder_fixture():
    return make_version_folder


@pytest.fixture
def staged(tmp_path: Path):
    return make_version_folder(tmp_path / "staged")


@pytest.fixture(scope="session")
def gcs_emulator():
    """gcp-storage-emulator on loopback, in memory; yields its host:port."""
    server_mod = pytest.importorskip("gcp_storage_emulator.server", reason="gcp-storage-emulator is not installed")
    port = free_port()
    server = server_mod.create_server("127.0.0.1", port, in_memory=True, default_bucket="models")
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_client(gcs_emulator, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    from shared.artifacts.gcs_store import make_client

    return make_client("test")
