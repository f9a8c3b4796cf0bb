"""Fixtures for the training-side tests (run in .venv-train: torch, transformers, onnx).

The FP32 encoder is exported once per session; tests that need a TrainedModel get a
fresh copy of it in their own folder, so none of them pays for a second export.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("torch", reason="tests/model_export run in .venv-train (torch)")


@pytest.fixture(scope="session")
def exported_encoder(tmp_path_factory: pytest.TempPathFactory):
    from model_export.export_encoder import export

    return export(tmp_path_factory.mktemp("encoder-export"))


@pytest.fixture()
def encoder_builder(exported_encoder):
    """A pipeline builder that hands out a copy of the session's exported encoder."""
    from dataclasses import replace

    calls: list[Path] = []

    def build(work_dir: Path, *, seed: int = 42):
        calls.append(work_dir)
        work_dir.mkdir(parents=True, exist_ok=True)
        copied = [Path(shutil.copy(p, work_dir)) for p in [exported_encoder.fp32_onnx, *exported_encoder.extra_files]]
        return replace(exported_encoder, fp32_onnx=copied[0], extra_files=copied[1:])

    build.calls = calls
    return build
