"""The local-folder back end: atomic replace, create-only writes, listing, key safety."""

import threading

import pytest

from shared.artifacts.store import KeyExistsError, LocalStore, open_store


def test_write_read_replace_and_list(tmp_path):
    store = LocalStore(tmp_path / "models")
    store.write_bytes("v1/a.bin", b"one")
    store.write_bytes("v1/a.bin", b"two")
    store.write_bytes("current.json", b"{}")
    assert store.read_bytes("v1/a.bin") == b"two"
    assert store.list() == ["current.json", "v1/a.bin"]
    assert store.list("v1/") == ["v1/a.bin"]
    assert store.exists("v1/a.bin") and not store.exists("v2/a.bin")
    assert not [p for p in (tmp_path / "models" / "v1").iterdir() if p.name.startswith(".")]


def test_missing_key_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        LocalStore(tmp_path).read_bytes("nope.json")


def test_create_only_write_has_exactly_one_winner(tmp_path):
    store = LocalStore(tmp_path)
    results: list[str] = []

    def claim(i: int) -> None:
        try:
            store.write_bytes("v7/.claim", str(i).encode(), if_absent=True)
            results.append("won")
        except KeyExistsError:
            results.append("lost")

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["lost"] * 7 + ["won"]


def test_keys_cannot_escape_the_store(tmp_path):
    store = LocalStore(tmp_path / "models")
    with pytest.raises(ValueError):
        store.write_bytes("../outside.txt", b"x")


def test_open_store_picks_the_back_end(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    gcs = open_store("gs://bucket/some/prefix")
    assert (gcs.bucket_name, gcs.prefix) == ("bucket", "some/prefix")


def test_hidden_staging_leftovers_are_neither_keys_nor_versions(tmp_path, staged):
    """A publisher that died mid-copy leaves a hidden folder; nobody may mistake it."""
    from shared.artifacts import list_versions, next_version, publish_version

    store = LocalStore(tmp_path / "models")
    (tmp_path / "models" / ".staging-dead").mkdir(parents=True)
    (tmp_path / "models" / ".staging-dead" / "toy.onnx").write_bytes(b"half")
    assert store.list() == []
    assert list_versions(store) == [] and next_version(store) == "v1"
    assert publish_version(store, *staged) == "v1"
