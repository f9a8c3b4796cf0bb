"""The GCS back end against gcp-storage-emulator (loopback, in memory).

The emulator ignores generation preconditions, so these tests check the data path
(keys, prefixes, listing, publish/fetch through versions.py) and NOT the atomicity of
create-only writes; that is GCS's server-side guarantee (if_generation_match=0).
"""

import uuid

import pytest

from shared.artifacts import fetch_version, list_versions, publish_version, read_current, set_current
from shared.artifacts.gcs_store import GcsStore, parse_gs_uri


def test_parse_gs_uri():
    assert parse_gs_uri("gs://b/models/") == ("b", "models")
    assert parse_gs_uri("gs://b") == ("b", "")
    with pytest.raises(ValueError):
        parse_gs_uri("s3://b/x")


@pytest.fixture
def store(gcs_client):
    return GcsStore(f"gs://models/run-{uuid.uuid4().hex[:8]}/models", client=gcs_client)


def test_bytes_roundtrip_listing_and_missing_key(store, tmp_path):
    store.write_bytes("v1/a.txt", b"hello")
    store.write_bytes("current.json", b"{}")
    assert store.read_bytes("v1/a.txt") == b"hello"
    assert store.list() == ["current.json", "v1/a.txt"]
    assert store.exists("v1/a.txt") and not store.exists("v1/b.txt")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("nope")
    with pytest.raises(FileNotFoundError):
        store.download_file("nope", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_publish_point_fetch_through_gcs(store, staged, tmp_path):
    folder, manifest = staged
    version = publish_version(store, folder, manifest)
    pointer = set_current(store, version)
    assert list_versions(store) == ["v1"] and read_current(store) == pointer
    path, fetched = fetch_version(store, version, tmp_path / "cache", expected_manifest_sha256=pointer.manifest_sha256)
    assert path.parent == tmp_path / "cache"
    assert (path / "toy.onnx").read_bytes() == b"model-bytes"
    assert fetched["files"] == manifest["files"]
    # A second fetch reuses the verified cached copy instead of downloading again.
    (path / "toy.onnx").touch()
    mtime = (path / "toy.onnx").stat().st_mtime_ns
    again, _ = fetch_version(store, version, tmp_path / "cache")
    assert again == path and (path / "toy.onnx").stat().st_mtime_ns == mtime


def test_corrupt_object_in_bucket_is_refused(store, staged, tmp_path):
    from shared.artifacts import CorruptArtifactError

    publish_version(store, *staged)
    store.write_bytes("v1/toy.onnx", b"model-bytez")
    with pytest.raises(CorruptArtifactError, match=r"toy\.onnx"):
        fetch_version(store, "v1", tmp_path / "cache")
