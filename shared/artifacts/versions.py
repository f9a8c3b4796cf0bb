"""Publishing, pointing at and fetching whole model versions.

Layout of a store:
    v1/ v2/ ...        one folder per version, flat files, manifest.json written last
    current.json       {"version": "v2", "manifest_sha256": ..., "updated": ..., "previous": "v1"}

Why a reader never sees a half-written version:
- a version is only ever reached through current.json, and current.json is moved only
  after the version is completely written and verified;
- locally, the version is written to a hidden staging folder and renamed into place in
  one step; on GCS the manifest is uploaded last, and a version without a manifest is
  incomplete to every reader;
- current.json carries the manifest's sha256, so a reader detects a manifest that is not
  the one the pointer was moved to.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.artifacts.manifest import (
    MANIFEST,
    VERSION_RE,
    CorruptArtifactError,
    dumps,
    model_files,
    sha256_bytes,
    verify_version,
    version_number,
)
from shared.artifacts.store import ArtifactStore, KeyExistsError, LocalStore

POINTER = "current.json"
CLAIM = ".claim"


@dataclass(frozen=True)
class Pointer:
    """What current.json says."""

    version: str
    manifest_sha256: str | None
    updated: str | None = None
    previous: str | None = None


def _version_folders(store: ArtifactStore) -> set[str]:
    if isinstance(store, LocalStore):
        if not store.root.is_dir():
            return set()
        return {p.name for p in store.root.iterdir() if p.is_dir() and VERSION_RE.match(p.name)}
    return {key.split("/", 1)[0] for key in store.list() if VERSION_RE.match(key.split("/", 1)[0])}


def list_versions(store: ArtifactStore) -> list[str]:
    """Complete versions (those with a manifest), oldest first."""
    complete = [v for v in _version_folders(store) if store.exists(f"{v}/{MANIFEST}")]
    return sorted(complete, key=version_number)


def next_version(store: ArtifactStore) -> str:
    """One more than any version folder, complete or not (a claimed number is never reused)."""
    numbers = [version_number(v) for v in _version_folders(store)]
    return f"v{max(numbers, default=0) + 1}"


def read_current(store: ArtifactStore) -> Pointer | None:
    """The pointer, or None when nothing was ever published."""
    try:
        raw = json.loads(store.read_bytes(POINTER))
    except FileNotFoundError:
        return None
    return Pointer(
        version=raw["version"],
        manifest_sha256=raw.get("manifest_sha256"),
        updated=raw.get("updated"),
        previous=raw.get("previous"),
    )


def read_manifest(store: ArtifactStore, version: str) -> dict:
    return json.loads(store.read_bytes(f"{version}/{MANIFEST}"))


def set_current(store: ArtifactStore, version: str) -> Pointer:
    """Move current.json to a complete version (one atomic object write)."""
    raw_manifest = store.read_bytes(f"{version}/{MANIFEST}")
    previous = read_current(store)
    pointer = Pointer(
        version=version,
        manifest_sha256=sha256_bytes(raw_manifest),
        updated=datetime.now(UTC).isoformat(timespec="seconds"),
        previous=previous.version if previous and previous.version != version else None,
    )
    store.write_bytes(POINTER, json.dumps(pointer.__dict__, indent=2).encode() + b"\n")
    return pointer


def publish_version(store: ArtifactStore, folder: Path, manifest: dict, *, attempts: int = 5) -> str:
    """Publish the files of `folder` plus `manifest` as a new version; return its name.

    The version number in `manifest` is a wish: if another publisher took it first, the
    next free number is used and the manifest rewritten accordingly. The folder is
    verified against the manifest before anything is uploaded, and the pointer is NOT
    moved here (callers gate first, then call set_current).
    """
    folder = Path(folder)
    verify_version(folder, manifest)
    for _ in range(attempts):
        version = manifest["version"]
        if store.exists(f"{version}/{MANIFEST}") or version in _version_folders(store):
            manifest = manifest | {"version": next_version(store)}
            continue
        try:
            if isinstance(store, LocalStore):
                _publish_local(store, folder, manifest)
            else:
                _publish_remote(store, folder, manifest)
            return manifest["version"]
        except KeyExistsError:
            manifest = manifest | {"version": next_version(store)}
    raise RuntimeError(f"could not claim a version number in {store} after {attempts} attempts")


def _publish_local(store: LocalStore, folder: Path, manifest: dict) -> None:
    """Stage in a hidden folder, then rename into place: all or nothing for readers."""
    store.root.mkdir(parents=True, exist_ok=True)
    staging = store.root / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        for name in manifest["files"]:
            shutil.copyfile(folder / name, staging / name)
        (staging / MANIFEST).write_bytes(dumps(manifest))
        for path in staging.iterdir():
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
        target = store.root / manifest["version"]
        try:
            target.mkdir()  # the claim: exactly one publisher creates it
        except FileExistsError as exc:
            raise KeyExistsError(manifest["version"]) from exc
        try:
            os.rename(staging, target)  # replaces the empty claimed folder atomically
        except BaseException:
            # Interrupted: give the number back rather than leave an empty folder (a
            # folder without a manifest is never a version to readers either way).
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _publish_remote(store: ArtifactStore, folder: Path, manifest: dict) -> None:
    """Claim vN with a create-only marker, upload the files, write the manifest last."""
    version = manifest["version"]
    store.write_bytes(f"{version}/{CLAIM}", b"", if_absent=True)
    for name in manifest["files"]:
        store.upload_file(folder / name, f"{version}/{name}")
    store.write_bytes(f"{version}/{MANIFEST}", dumps(manifest), if_absent=True)


def fetch_version(
    store: ArtifactStore,
    version: str,
    cache_dir: Path,
    *,
    expected_manifest_sha256: str | None = None,
    models: Iterable[str] | Callable[[dict], Iterable[str]] | None = None,
) -> tuple[Path, dict]:
    """A local, verified folder holding `version` (only the files of `models` when
    given: a function that serves two models neither downloads nor hashes the others'),
    and its manifest. `models` may be a function of the manifest (which models a process
    loads can depend on what the version holds).

    A local store is verified in place; a remote one is downloaded into
    `cache_dir/<version>` (`cache_dir/<version>+<models>` for a subset; through a temp
    folder renamed into place, so a crash mid-way leaves nothing that looks complete).
    Raises CorruptArtifactError on any mismatch.
    """
    raw = store.read_bytes(f"{version}/{MANIFEST}")
    if expected_manifest_sha256 and sha256_bytes(raw) != expected_manifest_sha256:
        raise CorruptArtifactError(f"{version}/{MANIFEST} does not match the sha256 current.json was moved with")
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CorruptArtifactError(f"{version}/{MANIFEST} is not valid JSON: {exc}") from exc
    if callable(models):
        models = models(manifest)
    served = None
    if models is not None:
        wanted = set(models)
        if not set(manifest.get("models", {})) <= wanted:  # a true subset of this version's models
            served = sorted(wanted & set(manifest.get("models", {})))
    local = store.local_path(version)
    if local is not None:
        return local, verify_version(local, manifest, models=served)

    cache_dir = Path(cache_dir)
    target = cache_dir / (version if served is None else f"{version}+{'+'.join(served) or 'none'}")
    if target.is_dir():
        try:
            return target, verify_version(target, manifest, models=served)
        except CorruptArtifactError:
            shutil.rmtree(target, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{version}-"))
    try:
        for name in model_files(manifest, served):
            store.download_file(f"{version}/{name}", tmp / name)
        (tmp / MANIFEST).write_bytes(raw)
        verify_version(tmp, manifest, models=served)
        try:
            os.rename(tmp, target)
        except OSError:  # another process of this machine won the race: use its copy
            pass
        return target, verify_version(target, manifest, models=served)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
