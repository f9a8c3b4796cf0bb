"""Versioned model artifacts: one store interface, a local-folder and a GCS back end.

A version `vN/` is a flat folder of files plus `manifest.json` (sha256 and size of every
file, metrics, data description, parent, created). `current.json` names the version in
service. `store.py` holds the key/blob back ends, `versions.py` the version logic on top,
`manifest.py` the manifest and its verification. See docs/models.md.
"""

from shared.artifacts.manifest import CorruptArtifactError
from shared.artifacts.store import ArtifactStore, KeyExistsError, LocalStore, open_store
from shared.artifacts.versions import (
    Pointer,
    fetch_version,
    list_versions,
    next_version,
    publish_version,
    read_current,
    read_manifest,
    set_current,
)

__all__ = [
    "ArtifactStore",
    "CorruptArtifactError",
    "KeyExistsError",
    "LocalStore",
    "Pointer",
    "fetch_version",
    "list_versions",
    "next_version",
    "open_store",
    "publish_version",
    "read_current",
    "read_manifest",
    "set_current",
]
