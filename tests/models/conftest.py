"""Fixtures for serving-side model tests (run in .venv: no torch).

Tests that need real published models use `published` (or the fixtures built on it),
which finds the store through settings (`MODEL_STORE_URI`, by default the repository's
`.state/models`, where `make models` publishes) and skips with the command to run when
nothing is published there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.needs import missing


@dataclass(frozen=True)
class Published:
    """The version in service in the configured store, fetched and verified."""

    store: Any
    version: str
    path: Path
    manifest: dict


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
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
    path, manifest = fetch_version(
        store,
        pointer.version,
        tmp_path_factory.mktemp("model-cache"),
        expected_manifest_sha256=pointer.manifest_sha256,
    )
    return Published(store, pointer.version, path, manifest)


@pytest.fixture(scope="session")
def published_registry(published: Published, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A ModelRegistry over the configured store, loaded once for the session."""
    from shared.models.registry import ModelRegistry

    registry = ModelRegistry(published.store, cache_dir=tmp_path_factory.mktemp("registry-cache"), ttl_s=3600)
    registry.refresh()
    return registry


@pytest.fixture(scope="session")
def encoder(published: Published) -> Any:
    """The published INT8 encoder's serving object."""
    if "encoder" not in published.manifest["models"]:
        missing(f"version {published.version} has no encoder")
    from shared.models.encoder import EncoderModel

    return EncoderModel(published.path, published.manifest["models"]["encoder"])
