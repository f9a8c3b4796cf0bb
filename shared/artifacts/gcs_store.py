"""The GCS back end (`gs://bucket/prefix`), through google-cloud-storage.

A GCS object write is atomic (readers see the old or the new object), and a create-only
write is `if_generation_match=0`, which GCS enforces server-side: that is what makes a
version number claim safe between concurrent publishers. (gcp-storage-emulator ignores
generation preconditions, so tests against it cannot prove that part; see
tests/artifacts/test_gcs_store.py.)

google-cloud-storage is imported lazily, so a deployment on a local store never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.artifacts.store import ArtifactStore, KeyExistsError

#: The pointer must never be served from an HTTP cache after it moves.
NO_CACHE_KEYS = ("current.json",)


def parse_gs_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/some/prefix` -> ("bucket", "some/prefix")."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri}")
    bucket, _, prefix = uri[len("gs://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri}")
    return bucket, prefix.strip("/")


def make_client(project: str | None = None):  # -> google.cloud.storage.Client
    """A storage client: anonymous against an emulator (STORAGE_EMULATOR_HOST), else ADC."""
    from google.cloud import storage  # type: ignore[attr-defined]

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project or "test", credentials=AnonymousCredentials())
    return storage.Client(project=project)


class GcsStore(ArtifactStore):
    def __init__(self, uri: str, *, client=None) -> None:
        self.uri = uri.rstrip("/")
        self.bucket_name, self.prefix = parse_gs_uri(self.uri)
        self._client = client
        self._bucket = None

    @property
    def bucket(self):
        if self._bucket is None:
            if self._client is None:
                self._client = make_client()
            self._bucket = self._client.bucket(self.bucket_name)
        return self._bucket

    def _name(self, key: str) -> str:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"bad key {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def read_bytes(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound

        try:
            return self.bucket.blob(self._name(key)).download_as_bytes()
        except NotFound as exc:
            raise FileNotFoundError(f"{self.uri}/{key}") from exc

    def write_bytes(self, key: str, data: bytes, *, if_absent: bool = False) -> None:
        from google.api_core.exceptions import PreconditionFailed

        blob = self.bucket.blob(self._name(key))
        if key in NO_CACHE_KEYS:
            blob.cache_control = "no-store"
        try:
            blob.upload_from_string(data, if_generation_match=0 if if_absent else None)
        except PreconditionFailed as exc:
            raise KeyExistsError(key) from exc

    def exists(self, key: str) -> bool:
        return self.bucket.blob(self._name(key)).exists()

    def list(self, prefix: str = "") -> list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        blobs = self._client_or_make().list_blobs(self.bucket_name, prefix=root + prefix)
        return sorted(b.name[len(root) :] for b in blobs)

    def _client_or_make(self):
        if self._client is None:
            self._client = make_client()
        return self._client

    def upload_file(self, path: Path, key: str) -> None:
        self.bucket.blob(self._name(key)).upload_from_filename(str(path))

    def download_file(self, key: str, path: Path) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self.bucket.blob(self._name(key)).download_to_filename(str(path))
        except NotFound as exc:
            Path(path).unlink(missing_ok=True)
            raise FileNotFoundError(f"{self.uri}/{key}") from exc
