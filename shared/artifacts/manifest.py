"""The manifest of a model version, and checking a version folder against it.

`manifest.json` is the version's table of contents and its proof of integrity: every
file with its sha256 and size, every model with its metrics, training data description
and INT8 check, the parent version and the creation time. A reader trusts nothing in a
version folder that the manifest does not vouch for.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

MANIFEST = "manifest.json"
VERSION_RE = re.compile(r"^v(\d+)$")


class CorruptArtifactError(RuntimeError):
    """A version folder does not match its manifest (missing, resized or altered file)."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_number(version: str) -> int:
    match = VERSION_RE.match(version)
    if not match:
        raise ValueError(f"not a version name: {version!r} (expected vN)")
    return int(match.group(1))


def build_manifest(
    folder: Path,
    *,
    version: str,
    models: dict[str, dict],
    parent: str | None = None,
    extra: dict | None = None,
) -> dict:
    """The manifest for the files in `folder` (flat; manifest.json itself excluded).

    Every model entry must name its `file` and `extra_files`, and each must be present:
    a manifest that points at nothing would only fail later, at serving time.
    """
    version_number(version)
    files = {
        p.name: {"sha256": sha256_file(p), "size": p.stat().st_size}
        for p in sorted(Path(folder).iterdir())
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".")
    }
    for name, entry in models.items():
        for needed in [entry["file"], *entry.get("extra_files", [])]:
            if needed not in files:
                raise ValueError(f"model {name!r} needs {needed!r}, which is not in {folder}")
    manifest = {
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "parent": parent,
        "models": models,
        "files": files,
    }
    if extra:
        manifest.update(extra)
    return manifest


def dumps(manifest: dict) -> bytes:
    """The one serialisation, so the pointer's manifest_sha256 is reproducible."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()


def model_files(manifest: dict, models: Iterable[str] | None = None) -> list[str]:
    """The files `models` need (each entry's file and extra_files), in the manifest's
    order; every listed file when `models` is None. A model the manifest does not have
    needs nothing."""
    files = list(manifest.get("files") or {})
    if models is None:
        return files
    entries = manifest.get("models", {})
    needed = {
        f
        for name in models
        if name in entries
        for f in [entries[name].get("file"), *entries[name].get("extra_files", [])]
    }
    return [f for f in files if f in needed]


def verify_version(folder: Path, manifest: dict | None = None, *, models: Iterable[str] | None = None) -> dict:
    """Check every file the manifest lists (only those of `models` when given) against
    its size and sha256; return the manifest.

    Raises CorruptArtifactError naming every bad file, so an operator sees the whole
    problem at once.
    """
    folder = Path(folder)
    if manifest is None:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError as exc:
            raise CorruptArtifactError(f"{folder} has no {MANIFEST}") from exc
        except json.JSONDecodeError as exc:
            raise CorruptArtifactError(f"{folder}/{MANIFEST} is not valid JSON: {exc}") from exc
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CorruptArtifactError(f"{folder}/{MANIFEST} lists no files")
    problems = []
    checked = set(model_files(manifest, models))
    for name, meta in files.items():
        if name not in checked:
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != meta.get("size"):
            problems.append(f"{name}: size {path.stat().st_size} != {meta.get('size')}")
        elif sha256_file(path) != meta.get("sha256"):
            problems.append(f"{name}: sha256 mismatch")
    for model, entry in manifest.get("models", {}).items():
        for needed in [entry.get("file"), *entry.get("extra_files", [])]:
            if needed not in files:
                problems.append(f"model {model}: {needed} not listed in the manifest")
    if problems:
        raise CorruptArtifactError(
            f"version {manifest.get('version', folder.name)} at {folder} is corrupt: " + "; ".join(problems)
        )
    return manifest
