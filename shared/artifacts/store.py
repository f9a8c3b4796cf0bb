"""Where model artifacts live: one small key/blob interface, two back ends.

Keys are relative paths inside the store ("v3/encoder.onnx", "current.json"). Version
logic (claiming numbers, manifests, the pointer) lives once in `versions.py` on top of
this interface, so the local folder and GCS behave the same way by construction.

Both back ends give the two guarantees publishing relies on:
- `write_bytes` replaces an object in one step (a reader sees the old or the new bytes);
- `write_bytes(..., if_absent=True)` creates an object only if it does not exist, and
  raises KeyExistsError otherwise (claiming a version number).
"""

from __future__ import annotations

import os
import shutil
import uuid
from abc import ABC, abstractmethod
from pathlib import Path


class KeyExistsError(FileExistsError):
    """A create-only write found the key already there (another publisher won)."""


class ArtifactStore(ABC):
    """A flat namespace of keys holding bytes, e.g. a folder or a GCS prefix."""

    uri: str

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError if there is none."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        """Replace (or, with if_absent, create-only) the object in one atomic step."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Every key under `prefix`, relative to the store root, sorted."""

    @abstractmethod
    def upload_file(self, path: Path, key: str) -> None: ...

    @abstractmethod
    def download_file(self, key: str, path: Path) -> None:
        """Copy the object to `path`; FileNotFoundError if there is none."""

    def local_path(self, version: str) -> Path | None:
        """The version's folder if it is already on this disk (no download needed)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore(ArtifactStore):
    """A folder on disk: development, tests and a fresh clone (`.state/models`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key escapes the store: {key!r}")
        return path

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if if_absent:
                try:
                    os.link(tmp, target)  # link(2) fails if target exists: create-only
                except FileExistsError as exc:
                    raise KeyExistsError(key) from exc
            else:
                os.replace(tmp, target)  # rename(2): readers see old or new, never half
            _fsync(target.parent)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file():
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix) and not any(p.startswith(".") for p in key.split("/")):
                    keys.append(key)
        return sorted(keys)

    def upload_file(self, path: Path, key: str) -> None:
        self.write_bytes(key, Path(path).read_bytes())

    def download_file(self, key: str, path: Path) -> None:
        shutil.copyfile(self._path(key), path)

    def local_path(self, version: str) -> Path | None:
        return self._path(version)


def open_store(uri: str | None = None) -> ArtifactStore:
    """The store at `uri` (gs://bucket/prefix or a folder); default: settings.model_store."""
    if uri is None:
        from shared.config import get_settings

        uri = get_settings().model_store
    if uri.startswith("gs://"):
        from shared.artifacts.gcs_store import GcsStore

        return GcsStore(uri)
    return LocalStore(Path(uri))
