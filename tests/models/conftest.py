"""Fixtures for serving-side model tests (run in .venv: no torch).

Tests that need real published models use `published` (or the fixtures built on it),
which finds the store through settings (`MODEL_STORE_URI`, by default the repository's
`.state/models`, where `make models` publishes) and skips with the command to run when
nothing is published there.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.needs import missing
from tests.published import Published, fetch_published


@pytest.fixture(scope="session")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    return fetch_published(tmp_path_factory.mktemp("model-cache"))


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
