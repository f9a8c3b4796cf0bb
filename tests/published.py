"""The model version in service in the configured store, for tests of the real models.

One home for both suites: the serving tests (`tests/models`, .venv) and the training-side
tests (`tests/model_export`, .venv-train) read the version `make models` published the
same way: through settings (`MODEL_STORE_URI`, by default the repository's
`.state/models`), fetched and verified against the pointer's manifest hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.needs import missing


@dataclass(frozen=True)
class Published:
    """The version in service in the configured store, fetched and verified."""

    store: Any
    version: str
    path: Path
    manifest: dict


def fetch_published(cache_dir: Path) -> Published:
    """Fetch the current version into `cache_dir`; skip (fail in CI) when none is published."""
    from shared.artifacts.store import open_store
    from shared.artifacts.versions import fetch_version, read_current
    from shared.config import get_settings

    store = open_store(get_settings().model_store)
    pointer = read_current(store)
    if pointer is None:
        missing(
            f"no model version is published in {store.uri}: "
            "run `.venv-train/bin/python -m model_export build` (make models) first"
        )
    path, manifest = fetch_version(store, pointer.version, cache_dir, expected_manifest_sha256=pointer.manifest_sha256)
    return Published(store, pointer.version, path, manifest)
