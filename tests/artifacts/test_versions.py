"""Publishing, pointing at and fetching versions (shared/artifacts/versions.py, manifest.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from shared.artifacts.manifest import (
    CorruptArtifactError,
    build_manifest,
    sha256_bytes,
    verify_version,
)
from shared.artifacts.store import ArtifactStore, KeyExistsError, LocalStore
from shared.artifacts.versions import (
    fetch_version,
    list_versions,
    next_version,
    publish_version,
    read_current,
    read_manifest,
    set_current,
)


class MemoryStore(ArtifactStore):
    """A remote-like store (no local_path) that records every write, in order."""

    def __init__(self) -> None:
        self.uri = "mem://test"
        self.objects: dict[str, bytes] = {}
        self.writes: list[str] = []
        self.lock = threading.Lock()

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.objects[key]
        except KeyError as exc:
            raise FileNotFoundError(key) from exc

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        with self.lock:
            if if_absent and key in self.objects:
                raise KeyExistsError(key)
            self.objects[key] = bytes(data)
            self.writes.append(key)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def list(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix))

    def upload_file(self, path: Path, key: str) -> None:
        self.write_bytes(key, Path(path).read_bytes())

    def download_file(self, key: str, path: Path) -> None:
        Path(path).write_bytes(self.read_bytes(key))


def make_folder(root: Path, content: str = "x") -> tuple[Path, dict]:
    folder = root / f"src-{content}"
    folder.mkdir()
    (folder / "m.onnx").write_bytes(f"model {content}".encode())
    (folder / "labels.json").write_text(json.dumps({"labels": [content]}))
    models = {"m": {"file": "m.onnx", "extra_files": ["labels.json"], "metrics": {"acc": 1.0}}}
    return folder, build_manifest(folder, version="v1", models=models, parent=None)


@pytest.fixture(params=["local", "remote"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    return LocalStore(tmp_path / "store") if request.param == "local" else MemoryStore()


def test_manifest_lists_every_file_with_sha256_and_size(tmp_path: Path) -> None:
    folder, manifest = make_folder(tmp_path)
    assert set(manifest["files"]) == {"m.onnx", "labels.json"}
    assert manifest["files"]["m.onnx"] == {
        "sha256": sha256_bytes(b"model x"),
        "size": len(b"model x"),
    }
    assert manifest["version"] == "v1" and manifest["parent"] is None and manifest["created"]
    assert verify_version(folder, manifest) is manifest


def test_manifest_refuses_a_model_whose_file_is_absent(tmp_path: Path) -> None:
    folder, _ = make_folder(tmp_path)
    with pytest.raises(ValueError, match=r"missing\.onnx"):
        build_manifest(folder, version="v1", models={"m": {"file": "missing.onnx"}})


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / "m.onnx").unlink(), r"m\.onnx: missing"),
        (lambda f: (f / "m.onnx").write_bytes(b"model y"), "m.onnx: sha256 mismatch"),
        (lambda f: (f / "labels.json").write_text("{}"), "labels.json: size"),
    ],
)
def test_verify_names_the_damaged_file(tmp_path: Path, damage, message: str) -> None:
    folder, manifest = make_folder(tmp_path)
    damage(folder)
    with pytest.raises(CorruptArtifactError, match=message):
        verify_version(folder, manifest)


def test_publish_then_point_then_fetch(store: ArtifactStore, tmp_path: Path) -> None:
    assert read_current(store) is None and list_versions(store) == []
    folder, manifest = make_folder(tmp_path)
    version = publish_version(store, folder, manifest)
    assert version == "v1" and list_versions(store) == ["v1"]
    assert read_current(store) is None, "publishing alone must not move the pointer"

    pointer = set_current(store, "v1")
    assert read_current(store) == pointer and pointer.version == "v1"
    assert pointer.manifest_sha256 == sha256_bytes(store.read_bytes("v1/manifest.json"))

    path, fetched = fetch_version(store, "v1", tmp_path / "cache", expected_manifest_sha256=pointer.manifest_sha256)
    assert fetched["files"] == manifest["files"]
    assert (path / "m.onnx").read_bytes() == b"model x"


def test_second_version_records_parent_and_previous(store: ArtifactStore, tmp_path: Path) -> None:
    folder, manifest = make_folder(tmp_path, "a")
    set_current(store, publish_version(store, folder, manifest))
    folder2, manifest2 = make_folder(tmp_path, "b")
    manifest2 = manifest2 | {"version": next_version(store), "parent": "v1"}
    v2 = publish_version(store, folder2, manifest2)
    pointer = set_current(store, v2)
    assert v2 == "v2" and pointer.previous == "v1"
    assert read_manifest(store, "v2")["parent"] == "v1"


def test_remote_publish_writes_the_manifest_last(tmp_path: Path) -> None:
    store = MemoryStore()
    folder, manifest = make_folder(tmp_path)
    publish_version(store, folder, manifest)
    version_writes = [k for k in store.writes if k.startswith("v1/")]
    assert version_writes[-1] == "v1/manifest.json"
    assert set(version_writes[:-1]) >= {"v1/m.onnx", "v1/labels.json"}


def test_local_publish_never_shows_a_partial_folder(tmp_path: Path, monkeypatch) -> None:
    """A crash while copying leaves no vN folder behind (only the staging area, cleaned)."""
    store = LocalStore(tmp_path / "store")
    folder, manifest = make_folder(tmp_path)
    import shared.artifacts.versions as versions

    real_copy = versions.shutil.copyfile
    calls = {"n": 0}

    def failing_copy(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        return real_copy(src, dst)

    monkeypatch.setattr(versions.shutil, "copyfile", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        publish_version(store, folder, manifest)
    assert list_versions(store) == []
    assert not (store.root / "v1").exists()
    assert [p.name for p in store.root.iterdir()] == []


def test_a_taken_version_number_is_skipped(store: ArtifactStore, tmp_path: Path) -> None:
    folder, manifest = make_folder(tmp_path)
    assert publish_version(store, folder, manifest) == "v1"
    assert publish_version(store, folder, manifest) == "v2", "v1 exists: the next number is used"
    assert read_manifest(store, "v2")["version"] == "v2"


def test_concurrent_publishers_get_distinct_versions(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    folder, manifest = make_folder(tmp_path)
    results: list[str] = []
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            results.append(publish_version(store, folder, manifest, attempts=20))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(results) == sorted(set(results)) and len(results) == 6
    for version in results:
        verify_version(store.root / version)


def test_publish_refuses_a_folder_that_does_not_match_its_manifest(store: ArtifactStore, tmp_path: Path) -> None:
    folder, manifest = make_folder(tmp_path)
    (folder / "m.onnx").write_bytes(b"changed after the manifest was built")
    with pytest.raises(CorruptArtifactError):
        publish_version(store, folder, manifest)
    assert list_versions(store) == []


def test_fetch_refuses_a_manifest_the_pointer_was_not_moved_with(store: ArtifactStore, tmp_path: Path) -> None:
    folder, manifest = make_folder(tmp_path)
    set_current(store, publish_version(store, folder, manifest))
    with pytest.raises(CorruptArtifactError, match="does not match"):
        fetch_version(store, "v1", tmp_path / "cache", expected_manifest_sha256="0" * 64)


def test_fetch_refuses_a_corrupt_remote_file_and_caches_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    folder, manifest = make_folder(tmp_path)
    publish_version(store, folder, manifest)
    store.objects["v1/m.onnx"] = b"model X"  # same size, different bytes
    with pytest.raises(CorruptArtifactError, match="sha256"):
        fetch_version(store, "v1", tmp_path / "cache")
    assert not (tmp_path / "cache" / "v1").exists()


def test_fetch_replaces_a_damaged_cached_copy(tmp_path: Path) -> None:
    store = MemoryStore()
    folder, manifest = make_folder(tmp_path)
    publish_version(store, folder, manifest)
    path, _ = fetch_version(store, "v1", tmp_path / "cache")
    (path / "m.onnx").write_bytes(b"rotten!")
    path2, _ = fetch_version(store, "v1", tmp_path / "cache")
    assert (path2 / "m.onnx").read_bytes() == b"model x"
