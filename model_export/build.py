"""The one build command: export/train every model, quantize, gate, publish, point.

    .venv-train/bin/python -m model_export build [--seed 42] [--store URI] [--force]

Steps, each logged with its duration:
1. fingerprint the inputs (model_export code and data, serving tokenizer code,
   requirements-train.txt, seed); when current.json already points at a version built
   from the same fingerprint, print "up to date" and stop (this is what makes running
   it on every `make run` cheap);
2. export the encoder, run the intent and confusion trainers (FP32 ONNX each);
3. quantize each to INT8 by every recipe, keep the one that agrees best with FP32 on
   the model's held-out check feeds, and refuse to publish if it fails the gate;
4. assemble the flat version folder, write the manifest (checksums, metrics, data,
   INT8 check, parent, fingerprint), load it with the serving classes as a smoke test;
5. publish it as the next vN and move current.json.
FP32 files and check feeds stay in `<state_dir>/build/<fingerprint>/` for the
INT8-agreement benchmark.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_export.base_model import data_root
from model_export.trained import TrainedModel
from shared.artifacts.manifest import build_manifest
from shared.artifacts.store import ArtifactStore, open_store
from shared.artifacts.versions import (
    next_version,
    publish_version,
    read_current,
    read_manifest,
    set_current,
)

log = logging.getLogger("model_export.build")

REPO = Path(__file__).resolve().parent.parent
BUILD_FORMAT = 1  # bump to force a rebuild when the build itself changes meaning

#: manifest key -> "module:function" (or the function) with the signature
#: (work_dir: Path, *, seed: int) -> TrainedModel
BUILDERS: dict[str, str | Callable[..., TrainedModel]] = {
    "encoder": "model_export.export_encoder:build",
    "intent": "model_export.train_intent:train",
    "confusion": "model_export.train_confusion:train",
    "grader": "model_export.train_grader:train",
    "predictor": "model_export.train_predictor:train",
}

#: what the fingerprint covers besides the seed
FINGERPRINT_PATHS = [
    "model_export",
    "requirements-train.txt",
    "shared/models/onnx_model.py",
    "shared/artifacts",
    "shared/prediction/features.py",  # the predictor's inputs, shared by training and serving
    "shared/prediction/defaults.py",
]


@dataclass
class BuildResult:
    version: str | None
    up_to_date: bool
    fingerprint: str
    manifest: dict | None = None


@contextmanager
def step(name: str) -> Iterator[dict]:
    """Log the start and duration of a build step; the dict collects the seconds."""
    record: dict = {}
    log.info("%s ...", name)
    start = time.perf_counter()
    yield record
    record["seconds"] = round(time.perf_counter() - start, 2)
    log.info("%s done in %.1fs", name, record["seconds"])


def fingerprint(seed: int, models: list[str]) -> str:
    """sha256 over every input that can change what the build produces."""
    digest = hashlib.sha256(f"format={BUILD_FORMAT};seed={seed};models={sorted(models)}".encode())
    # Which shared data sets exist decides whether the grader and predictor are trained:
    # a build made without them must not count as up to date once they arrive.
    root = data_root()
    present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    digest.update(f";data={present}".encode())
    for rel in FINGERPRINT_PATHS:
        root = REPO / rel
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            digest.update(path.relative_to(REPO).as_posix().encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _resolve(spec: str | Callable[..., TrainedModel]) -> Callable[..., TrainedModel]:
    if callable(spec):
        return spec
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        raise RuntimeError(f"the builder {spec} is not available: {exc}") from exc


def _save_feeds(path: Path, feeds: list[dict[str, np.ndarray]]) -> None:
    """Keep check feeds for the agreement benchmark: feed i, input k -> 'i/k'."""
    arrays = {f"{i}/{k}": v for i, feed in enumerate(feeds) for k, v in feed.items()}
    np.savez(path, **arrays)


def load_feeds(path: Path) -> list[dict[str, np.ndarray]]:
    """Inverse of _save_feeds."""
    feeds: dict[int, dict[str, np.ndarray]] = {}
    with np.load(path) as data:
        for key in data.files:
            index, _, name = key.partition("/")
            feeds.setdefault(int(index), {})[name] = data[key]
    return [feeds[i] for i in sorted(feeds)]


def _place(src: Path, dst_dir: Path) -> str:
    """Copy a file into the flat version folder; identical duplicates are shared."""
    target = dst_dir / src.name
    if target.exists():
        if target.read_bytes() != src.read_bytes():
            raise RuntimeError(f"two models publish different files named {src.name}")
        return src.name
    shutil.copyfile(src, target)
    return src.name


def smoke_load(version_dir: Path, manifest: dict) -> None:
    """Construct every serving class on the assembled folder before it can be published."""
    from shared.models.registry import MODEL_CLASSES
    from shared.models.registry import _resolve as resolve_class

    for name, entry in manifest["models"].items():
        spec = MODEL_CLASSES.get(name)
        if spec is None:
            continue
        try:
            factory = resolve_class(spec)
        except (ImportError, AttributeError) as exc:
            log.warning("no serving class for %s yet (%s); skipping its smoke load", name, exc)
            continue
        factory(version_dir, entry)
        log.info("smoke load of %s with %s ok", name, spec)


class Int8Disagreement(RuntimeError):
    """The INT8 graph disagrees with FP32 beyond the gate's thresholds."""

    def __init__(self, name: str, agreement) -> None:
        super().__init__(
            f"INT8 {name} fails the FP32 agreement gate: {'; '.join(agreement.failures)}; nothing was published"
        )
        self.agreement = agreement


def package_model(trained: TrainedModel, work: Path, version_dir: Path, *, train_seconds: float) -> dict:
    """Quantize a trained model to INT8, check it against FP32 (Int8Disagreement when it
    fails), place its files in the flat version folder; return its manifest entry."""
    from model_export.quantize import quantize_best

    name = trained.name
    work.mkdir(parents=True, exist_ok=True)
    _save_feeds(work / "check_feeds.npz", trained.check_feeds)
    with step(f"quantize + check {name}") as quant_time:
        int8_path, agreement, recipes = quantize_best(trained, work / "int8")
    log.info("%s INT8 (%s): %s", name, agreement.scheme, agreement.summary())
    if not agreement.passed:
        raise Int8Disagreement(name, agreement)
    shutil.copyfile(int8_path, version_dir / f"{name}.onnx")
    extra = [_place(p, version_dir) for p in trained.extra_files]
    return {
        "file": f"{name}.onnx",
        "extra_files": extra,
        "output_kind": trained.output_kind,
        "metrics": trained.metrics,
        "data": trained.data,
        "int8_check": agreement.as_dict() | {"recipes": recipes},
        "sizes": {
            "fp32_bytes": trained.fp32_onnx.stat().st_size,
            "int8_bytes": (version_dir / f"{name}.onnx").stat().st_size,
        },
        "timings": {"train_s": train_seconds, "quantize_s": quant_time["seconds"]},
        **({"extra": trained.extra} if getattr(trained, "extra", None) else {}),
    }


def build(
    *,
    store: ArtifactStore | str | None = None,
    seed: int = 42,
    models: list[str] | None = None,
    force: bool = False,
    promote: bool = True,
    work_root: Path | None = None,
    require: list[str] | None = None,
) -> BuildResult:
    """Build, gate and publish every model; see the module docstring.

    `require` names models the version must contain (the cloud build requires the grader
    and the predictor): if one was skipped for want of its data set, nothing is published
    and the pointer stays, so production never ships silently on a fallback."""
    from shared.config import get_settings

    settings = get_settings()
    store = store if isinstance(store, ArtifactStore) else open_store(store and str(store))
    models = list(models or BUILDERS)
    unknown = [m for m in models if m not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown models {unknown}; known: {sorted(BUILDERS)}")
    key = fingerprint(seed, models)

    pointer = read_current(store)
    if pointer is not None and not force:
        current = read_manifest(store, pointer.version)
        if current.get("build", {}).get("fingerprint") == key:
            log.info("up to date: %s in %s was built from the same inputs", pointer.version, store)
            print(f"up to date: {pointer.version} ({store.uri})")
            return BuildResult(pointer.version, True, key, current)

    work = (work_root or settings.state_dir / "build") / key[:16]
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    version_dir = work / "version"
    version_dir.mkdir()
    entries: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for name in models:
        builder = _resolve(BUILDERS[name])
        with step(f"train/export {name}") as trained_time:
            try:
                trained = builder(work / name, seed=seed)
            except FileNotFoundError as exc:
                # A trainer whose data set is absent (a fresh clone has no ../shared/data)
                # marks its error `skip_model`: the version is built without that model
                # and serving uses the model's fallback.
                if not getattr(exc, "skip_model", False):
                    raise
                log.warning("skipping %s: %s (serving will use its fallback)", name, exc)
                print(f"skipped {name}: {exc}")
                skipped[name] = str(exc)
                continue
        if trained.name != name:
            raise RuntimeError(f"builder for {name} returned a model named {trained.name}")
        entries[name] = package_model(trained, work / name, version_dir, train_seconds=trained_time["seconds"])

    head_record = None
    if "encoder" in entries and "intent" in entries:
        with step("train + merge the intent head"):
            head_record = attach_intent_head(version_dir, entries, work / "intent_head", seed=seed)

    missing = [m for m in require or [] if m not in entries]
    if missing:
        reasons = "; ".join(f"{m}: {skipped.get(m, 'not built (not in --models)')}" for m in missing)
        raise RuntimeError(f"required models missing from the version, nothing published: {reasons}")
    manifest = build_manifest(
        version_dir,
        version=next_version(store),
        models=entries,
        parent=pointer.version if pointer else None,
        extra={"build": _build_info(key, seed) | ({"intent_head": head_record} if head_record else {})},
    )
    with step("smoke load with the serving classes"):
        smoke_load(version_dir, manifest)
    with step("publish"):
        version = publish_version(store, version_dir, manifest)
        manifest["version"] = version
        if promote:
            set_current(store, version)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("published %s to %s%s", version, store.uri, " and moved current.json" if promote else "")
    _prune_old_builds(work)
    print(summary(manifest))
    print(f"published {version} ({store.uri})")
    return BuildResult(version, False, key, manifest)


def attach_intent_head(version_dir: Path, entries: dict[str, dict], work: Path, *, seed: int = 42, split=None) -> dict:
    """Train the intent head on the version's encoder and the intent model's split
    (`model_export.intent_head`); when it passes its gate, add `encoder_intent` to
    `entries` (chat then reads the intent in the encoder's pass). Returns what happened,
    for the manifest's build record: the entry's metrics, or why the head was kept out."""
    from model_export import intent_head
    from model_export.intent_data import INTENT_LABELS, load_examples, stratified_split
    from model_export.train_intent import load_golden

    entries.pop(intent_head.NAME, None)  # never a head trained for another intent model
    split = split or stratified_split(load_examples(), seed=seed)
    result = intent_head.build(
        version_dir, work, split, list(INTENT_LABELS), load_golden(), entries["intent"].get("metrics")
    )
    if "skipped" in result:
        log.warning("intent head kept out: %s; chat reads the intent with the intent model", result["skipped"])
        return result
    entries[intent_head.NAME] = result
    return {"served": True, "gate": result["metrics"]["gate"]}


def _prune_old_builds(keep: Path) -> None:
    """Old build folders hold ~200 MB of FP32 graphs each; only the newest is useful."""
    for sibling in keep.parent.iterdir():
        if sibling.is_dir() and sibling != keep:
            shutil.rmtree(sibling, ignore_errors=True)


def summary(manifest: dict) -> str:
    """One line per model: sizes, INT8 recipe and agreement, training time."""
    lines = [f"{manifest['version']} (parent {manifest.get('parent')}):"]
    for name, entry in manifest["models"].items():
        if "int8_check" not in entry:  # the intent head: grafted onto the INT8 encoder, not quantized
            metrics = entry.get("metrics", {})
            lines.append(
                f"  {name:<10} {entry['sizes']['bytes'] / 1e6:6.2f} MB (encoder + head); test "
                f"{metrics.get('test', {}).get('accuracy')}, golden {metrics.get('golden', {}).get('accuracy')}"
            )
            continue
        check = entry["int8_check"]
        values = ", ".join(f"{k} {v:.4f}" for k, v in check["values"].items())
        sizes = entry["sizes"]
        lines.append(
            f"  {name:<10} fp32 {sizes['fp32_bytes'] / 1e6:6.2f} MB -> int8 "
            f"{sizes['int8_bytes'] / 1e6:6.2f} MB ({check['scheme']}: {values}); "
            f"train {entry['timings']['train_s']:.1f}s, quantize {entry['timings']['quantize_s']:.1f}s"
        )
    return "\n".join(lines)


def _build_info(key: str, seed: int) -> dict:
    versions = {}
    for module in ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "numpy"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except ImportError:
            versions[module] = None
    return {
        "fingerprint": key,
        "seed": seed,
        "format": BUILD_FORMAT,
        "python": platform.python_version(),
        "libraries": versions,
    }
