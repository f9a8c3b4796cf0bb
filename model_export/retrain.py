"""The training job: retrain from a dataset snapshot, gate, publish vN+1 or reject.

    .venv-train/bin/python -m model_export.retrain --run <id> [--models intent,predictor]
        [--date YYYY-MM-DD|latest] [--store URI] [--datasets URI] [--quick] [--no-prior]

1. read the snapshot (`model_export.datasets`: complete dates only) and record it;
2. split every item 80/10/10 by a stable hash of its id (`datasets.split_of`);
3. train what the run names with the existing trainers: intent on the seed queries plus
   the human labels, plus the silver (LLM) labels of the training part with a lower
   weight (`--silver-weight`, 0.3; never in val or test); predictor on the product
   attempts plus the ASSISTments prior (new users and topics learned); confusion on the
   bootstrap conversations plus the snapshot's labelled ones, only when it has some
   (skipped, and said so, otherwise);
4. quantize each to INT8 and assemble the candidate version: the new models plus the
   parent's other models, unchanged;
5. gate: (a) on the PREVIOUS version's test split, the new model may be at most
   `max_drop` (2 points) worse than the parent (accuracy for intent, AUC for the
   predictor); (b) intent: every golden query right; (c) INT8 agrees with FP32;
6. all gates pass: publish vN+1 (manifest: parent, dataset snapshot, metrics, gates) and
   move current.json last; any gate fails: status `rejected`, nothing published, the
   version in service untouched.

The job writes `runs/<id>/result.json` (status, timestamps, snapshot, gates, metrics,
version), `runs/<id>/report.md` and `runs/<id>/metrics.svg` into the model store; the
launcher (`shared.learning.runs`) copies the result into `training_runs` and
`model_versions`. Exit code 0 = succeeded, 3 = rejected, 1 = failed.

A job killed at any point leaves no visible version: versions are assembled in a
private work folder and published with the store's all-or-nothing publish
(`shared.artifacts.versions.publish_version`); the pointer moves only after that.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from model_export.datasets import Snapshot, load_snapshot, split_of
from shared.artifacts.manifest import build_manifest
from shared.artifacts.store import ArtifactStore, open_store
from shared.artifacts.versions import (
    fetch_version,
    next_version,
    publish_version,
    read_current,
    read_manifest,
    set_current,
)

log = logging.getLogger("model_export.retrain")

MODELS = ("intent", "predictor", "confusion")
MAX_DROP = 0.02  # the seed rule: refuse a drop of more than 2 points
#: a silver (LLM) label's weight in the intent loss; a human label weighs 1
SILVER_WEIGHT = 0.3
EXIT = {"succeeded": 0, "failed": 1, "rejected": 3}


@dataclass
class JobConfig:
    run_id: str
    store: str | None = None
    datasets: str | None = None
    date: str = "latest"
    models: list[str] = field(default_factory=lambda: list(MODELS))
    seed: int = 42
    prior: bool = True  # the ASSISTments prior for the predictor, when ../shared/data has it
    quick: bool = False  # small epochs: tests and demos
    max_drop: float = MAX_DROP
    silver_weight: float = SILVER_WEIGHT  # 0 = leave silver labels out
    work_root: Path | None = None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --- progress ----------------------------------------------------------------------


class Progress:
    """A progress bar on a terminal, `progress i/n: stage` log lines always."""

    def __init__(self, stages: list[str]) -> None:
        self.stages = stages
        self.done = 0
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=len(stages), file=sys.stderr, unit="stage", leave=True)

    def start(self, stage: str) -> None:
        log.info("progress %d/%d: %s", self.done + 1, len(self.stages), stage)
        if self.bar is not None:
            self.bar.set_description(stage)

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# --- data per model ----------------------------------------------------------------


def intent_split(snapshot: Snapshot, held_out: frozenset[str] = frozenset()):
    """Seed queries plus human labels, split by item hash; a human label of a text the
    seed set also has replaces the seed's label. Texts in `held_out` (the test split of
    a parent built by `model_export build`) go to test, never to train."""
    from model_export.intent_data import INTENT_LABELS, Split, load_examples

    items: dict[str, tuple[str, str, str]] = {}
    for text, label in load_examples():
        items[text.strip().lower()] = (f"seed:{text}", text, label)
    for row in snapshot.labels:
        if row.label in INTENT_LABELS:
            items[row.text.strip().lower()] = (f"interaction:{row.interaction_id}", row.text, row.label)
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for item_id, text, label in sorted(items.values()):
        parts["test" if text in held_out else split_of(item_id)].append((text, label))
    return Split(parts["train"], parts["val"], parts["test"])


def silver_examples(
    snapshot: Snapshot, held_out: frozenset[str] = frozenset()
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The snapshot's silver (LLM) labels the intent model may train on, and why the others
    were left out. Only items whose hash part is `train` (an interaction never changes
    part, so one that a human labels later cannot leak from train into test), never a
    text a seed query or a human label already has (theirs wins), never a held-out text,
    only labels of the taxonomy."""
    from model_export.intent_data import INTENT_LABELS, load_examples

    known = {t.strip().lower() for t, _ in load_examples()} | {r.text.strip().lower() for r in snapshot.labels}
    held = {t.strip().lower() for t in held_out}
    used: list[tuple[str, str]] = []
    counts = {"rows": len(snapshot.silver), "used": 0, "not_train_part": 0, "has_gold_label": 0, "unknown_label": 0}
    for row in sorted(snapshot.silver, key=lambda r: r.interaction_id):
        key = row.text.strip().lower()
        if row.label not in INTENT_LABELS:
            counts["unknown_label"] += 1
        elif key in known or key in held:
            counts["has_gold_label"] += 1
        elif split_of(f"interaction:{row.interaction_id}") != "train":
            counts["not_train_part"] += 1
        else:
            used.append((row.text, row.label))
            known.add(key)
    counts["used"] = len(used)
    return used, counts


def product_conversations(snapshot: Snapshot) -> dict[str, list]:
    """The snapshot's labelled conversations (human confusion labels of chat turns, each
    with up to 3 student messages) per part, split by a hash of the conversation id."""
    from model_export.confusion_data import Conversation, Message

    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for row in sorted(snapshot.conversations, key=lambda r: str(r.get("conversation_id"))):
        raw = row.get("messages")
        messages = json.loads(raw) if isinstance(raw, str) else raw
        window = tuple(
            Message(str(m["text"]), None if m.get("seconds") is None else float(m["seconds"]))
            for m in (messages or [])[-3:]
            if m.get("text")
        )
        if not window:
            continue
        conversation = Conversation(window, int(bool(row["label"])), "product")
        parts[split_of(f"conversation:{row['conversation_id']}")].append(conversation)
    return parts


def confusion_auc(version_dir: Path, entry: dict, conversations: list) -> float:
    """AUC of a version's confusion graph on conversations embedded with the FP32 encoder."""
    from model_export.train_confusion import embed_texts, to_arrays
    from model_export.training import roc_auc
    from shared.models.onnx_model import OnnxModel

    vectors = embed_texts([m.text for c in conversations for m in c.messages])
    emb, feat, y = to_arrays(conversations, vectors)
    logit = OnnxModel(version_dir / entry["file"], threads=1).run({"embeddings": emb, "timing": feat})[0]
    return roc_auc(y, 1 / (1 + np.exp(-logit.astype(np.float64))))


def product_sequences(snapshot: Snapshot) -> list:
    """The snapshot's attempts as one sequence per pseudonymous user, oldest first."""
    from model_export.predictor_data import Sequence

    by_user: dict[str, Sequence] = {}
    for a in snapshot.attempts:
        seq = by_user.setdefault(a.user_id, Sequence(a.user_id, [], [], [], []))
        seq.topics.append(a.topic_id)
        seq.correct.append(a.correct)
        seq.difficulty.append(a.difficulty)
        seq.seconds.append(a.seconds)
    return list(by_user.values())


def predictor_sequences(snapshot: Snapshot, prior: bool, seed: int) -> list:
    """Product sequences plus the ASSISTments prior (when asked and present), with the
    prior's difficulty and times filled in exactly as the trainer's `prepare` does."""
    from model_export.predictor_data import (
        PredictorDataMissing,
        add_difficulty_and_times,
        assistments_path,
        read_dkt,
        skill_difficulty,
    )

    sequences = product_sequences(snapshot)
    if prior:
        try:
            sequences = read_dkt(assistments_path()) + sequences
        except PredictorDataMissing:
            log.info("no ASSISTments prior here; the predictor trains on product attempts only")
    difficulty = skill_difficulty([s for s in sequences if student_part(s) == "train"])
    add_difficulty_and_times(sequences, difficulty, seed)
    return sequences


def student_part(sequence) -> str:
    return split_of(f"user:{sequence.user}")


# --- evaluation of a published or candidate version on a split -------------------------


def intent_accuracy(version_dir: Path, entry: dict, examples: list[tuple[str, str]]) -> float:
    from shared.models.intent import IntentModel

    model = IntentModel(version_dir, entry, threads=1)
    right = 0
    for i in range(0, len(examples), 64):
        chunk = examples[i : i + 64]
        pred = model.logits([t for t, _ in chunk]).argmax(-1)
        right += sum(model.labels[p] == lab for p, (_, lab) in zip(pred, chunk, strict=True))
    return right / max(1, len(examples))


def golden_failures(version_dir: Path, entry: dict) -> list[dict]:
    from model_export.train_intent import load_golden
    from shared.models.intent import IntentModel

    model = IntentModel(version_dir, entry, threads=1)
    golden = load_golden()
    pred = model.logits([t for t, _ in golden]).argmax(-1) if golden else []
    return [
        {"query": t, "expected": lab, "got": model.labels[p]}
        for p, (t, lab) in zip(pred, golden, strict=True)
        if model.labels[p] != lab
    ]


def predictor_auc(version_dir: Path, entry: dict, sequences: list) -> float:
    from model_export.predictor_data import to_rows
    from model_export.train_predictor import META_FILE, feeds_of
    from model_export.training import roc_auc
    from shared.models.onnx_model import OnnxModel

    meta = json.loads((version_dir / META_FILE).read_text(encoding="utf-8"))
    window = meta.get("recent_window") or 1  # a graph without the sequence input ignores it
    rows = to_rows(sequences, meta["users"], meta["topics"], window)
    logit = OnnxModel(version_dir / entry["file"], threads=1).run(feeds_of(rows))[0]
    return roc_auc(rows.correct, 1 / (1 + np.exp(-logit.astype(np.float64))))


# --- the job -----------------------------------------------------------------------


class Job:
    def __init__(self, config: JobConfig) -> None:
        from shared.config import get_settings

        settings = get_settings()
        self.config = config
        self.store: ArtifactStore = open_store(config.store or settings.model_store)
        datasets = config.datasets or settings.datasets_uri
        if not datasets:
            raise ValueError("no dataset store: pass --datasets or set DATASETS_URI")
        self.datasets = datasets
        self.result: dict = {
            "run_id": config.run_id,
            "status": "running",
            "models": list(config.models),
            "started_at": now(),
            "finished_at": None,
            "snapshot": None,
            "parent": None,
            "version": None,
            "gates": {},
            "metrics": {},
            "skipped": {},
            "reasons": [],
            "error": None,
            "timings": {},
        }
        self.parent_manifest: dict | None = None

    # The run's record in the store ------------------------------------------------
    def key(self, name: str) -> str:
        return f"runs/{self.config.run_id}/{name}"

    def save(self) -> None:
        self.store.write_bytes(self.key("result.json"), json.dumps(self.result, indent=2, default=str).encode())

    def timed(self, name: str, started: float) -> None:
        self.result["timings"][name] = round(time.perf_counter() - started, 1)

    # ---------------------------------------------------------------------------------
    def run(self) -> dict:
        unknown = [m for m in self.config.models if m not in MODELS]
        if unknown:
            raise ValueError(f"unknown models {unknown}; the job trains {list(MODELS)}")
        self.save()
        started = time.perf_counter()
        stages = ["snapshot", *[f"train {m}" for m in self.config.models], "gate", "publish", "report"]
        progress = Progress(stages)
        work = Path(tempfile.mkdtemp(prefix=f"retrain-{self.config.run_id}-", dir=self.config.work_root))
        try:
            self._run(progress, work)
        except BaseException as exc:
            log.exception("run %s failed", self.config.run_id)
            self.result["status"] = "failed"
            self.result["error"] = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, Exception):  # interrupted: record, then stop as asked
                raise
        finally:
            progress.close()
            shutil.rmtree(work, ignore_errors=True)
            self.result["finished_at"] = now()
            self.timed("total", started)
            try:
                self.write_report()
            except Exception:  # the report must never hide the outcome
                log.exception("could not write the report of run %s", self.config.run_id)
            self.save()
        log.info("run %s %s: %s", self.config.run_id, self.result["status"], self.result["reasons"] or "")
        return self.result

    def _run(self, progress: Progress, work: Path) -> None:
        cfg = self.config
        progress.start("snapshot")
        t0 = time.perf_counter()
        snapshot = load_snapshot(self.datasets, cfg.date)
        self.result["snapshot"] = snapshot.record()
        pointer = read_current(self.store)
        parent_dir, parent_manifest = None, None
        if pointer is not None:
            parent_dir, parent_manifest = fetch_version(
                self.store, pointer.version, work / "parent-cache", expected_manifest_sha256=pointer.manifest_sha256
            )
            self.result["parent"] = pointer.version
        self.parent_manifest = parent_manifest
        self.timed("snapshot", t0)
        self.save()
        progress.advance()

        from model_export.build import Int8Disagreement, package_model, smoke_load

        candidate = work / "version"
        candidate.mkdir()
        entries: dict[str, dict] = {}
        trained_models: list[str] = []
        int8_failures: dict[str, dict] = {}
        prior_used = False
        for name in cfg.models:
            progress.start(f"train {name}")
            t0 = time.perf_counter()
            trained = None
            if name == "intent":
                trained = self.train_intent(snapshot, work / name)
            elif name == "predictor":
                trained, prior_used = self.train_predictor(snapshot, work / name)
            elif name == "confusion":
                if not snapshot.conversations:
                    self.result["skipped"]["confusion"] = "no labelled conversations in the snapshot"
                else:
                    trained = self.train_confusion(snapshot, work / name)
            if trained is not None:
                self.result["metrics"][name] = {k: v for k, v in trained.metrics.items() if k != "config"}
                try:
                    entries[name] = package_model(trained, work / name, candidate, train_seconds=0.0)
                    entries[name]["timings"]["train_s"] = round(time.perf_counter() - t0, 1)
                    trained_models.append(name)
                except Int8Disagreement as exc:
                    int8_failures[name] = exc.agreement.as_dict()
            self.timed(f"train {name}", t0)
            self.save()
            progress.advance()

        progress.start("gate")
        t0 = time.perf_counter()
        if not trained_models and not int8_failures:
            raise RuntimeError(f"nothing to train: {self.result['skipped']}")
        # The candidate: the new models plus every other model of the parent, unchanged.
        from model_export.build import _place

        if parent_manifest is not None:
            for name, entry in parent_manifest["models"].items():
                if name in entries or name in int8_failures:
                    continue
                if name == "encoder_intent" and "intent" in trained_models:
                    continue  # the parent's head read the parent's intents: trained anew below
                for file in [entry["file"], *entry.get("extra_files", [])]:
                    _place(parent_dir / file, candidate)
                entries[name] = entry | {"inherited_from": pointer.version}
        if "intent" in trained_models and "encoder" in entries:
            from model_export.build import attach_intent_head

            self.result["intent_head"] = attach_intent_head(
                candidate, entries, work / "intent_head", seed=cfg.seed, split=self.intent_split
            )
        gates = self.gate(snapshot, entries, trained_models, int8_failures, candidate, parent_dir, parent_manifest)
        self.result["gates"] = gates
        self.timed("gate", t0)
        progress.advance()

        failed = [f"{model}: {g['reason']}" for model, per in gates.items() for g in per.values() if not g["passed"]]
        progress.start("publish")
        t0 = time.perf_counter()
        if failed:
            self.result["status"] = "rejected"
            self.result["reasons"] = failed
            log.warning("run %s rejected: %s", cfg.run_id, "; ".join(failed))
        else:
            for name in trained_models:
                entries[name]["gate"] = gates[name]
            manifest = build_manifest(
                candidate,
                version=next_version(self.store),
                models=entries,
                parent=pointer.version if pointer else None,
                extra={
                    "dataset": self.result["snapshot"] | {"assistments_prior": prior_used},
                    "run": {"id": cfg.run_id, "retrained": trained_models, "gates": gates},
                    # the code fingerprint of the build it descends from: `model_export build`
                    # stays "up to date" and does not replace a retrained version
                    "build": (parent_manifest or {}).get("build", {})
                    | {"kind": "retrain", "seed": cfg.seed, "quick": cfg.quick},
                },
            )
            smoke_load(candidate, manifest)
            version = publish_version(self.store, candidate, manifest)
            set_current(self.store, version)  # last: the version is complete and verified
            self.result["status"] = "succeeded"
            self.result["version"] = version
            self.result["manifest"] = read_manifest(self.store, version)
            log.info("published %s and moved current.json", version)
        self.timed("publish", t0)
        progress.advance()
        progress.start("report")

    # Training -------------------------------------------------------------------------
    def held_out(self, name: str) -> frozenset[str]:
        """What the new model must not train on so the gate compares on unseen data: the
        test split of a parent model built by `model_export build` (seeded, not hashed).
        A parent model of this job used the hash split, which already keeps it out."""
        entry = (self.parent_manifest or {}).get("models", {}).get(name)
        if entry is None or (entry.get("data") or {}).get("dataset_snapshot"):
            return frozenset()
        items, _ = self.previous_test(name, entry, self.parent_manifest, None)
        return frozenset(t for t, _ in items) if name == "intent" else frozenset(s.user for s in items)

    def train_intent(self, snapshot: Snapshot, work: Path):
        from model_export.train_intent import IntentConfig, train

        held_out = self.held_out("intent")
        split = intent_split(snapshot, held_out)
        self.intent_split = split  # the intent head trains on the same parts
        silver, silver_counts = silver_examples(snapshot, held_out) if self.config.silver_weight > 0 else ([], {})
        config = IntentConfig(seed=self.config.seed, epochs=2 if self.config.quick else IntentConfig.epochs)
        data = {
            "source": "model_export/data/intent_queries.tsv (seed queries) + human labels of the "
            f"dataset snapshot {snapshot.date}",
            "dataset_snapshot": snapshot.date,
            "human_labels": len(snapshot.labels),
            "split": {"method": "sha256 of the item id, 80/10/10", "parent_test_held_out": len(held_out)}
            | split.sizes(),
            "golden_set": "tests/golden_queries.json (50 queries, never trained on)",
            "silver_labels": silver_counts | {"weight": self.config.silver_weight, "part": "train only"},
        }
        return train(
            work,
            seed=self.config.seed,
            split=split,
            config=config,
            data=data,
            silver=silver,
            silver_weight=self.config.silver_weight,
        )

    def train_confusion(self, snapshot: Snapshot, work: Path):
        """The bootstrap conversations plus the snapshot's labelled ones (hash split)."""
        from model_export.train_confusion import train

        product = product_conversations(snapshot)
        return train(
            work,
            seed=self.config.seed,
            product=product,
            data_extra={
                "dataset_snapshot": snapshot.date,
                "product_conversations": {part: len(rows) for part, rows in product.items()},
                "product_split": "sha256 of conversation:<id>, 80/10/10",
            },
        )

    def train_predictor(self, snapshot: Snapshot, work: Path):
        from model_export.predictor_data import PredictorDataMissing, assistments_path
        from model_export.train_predictor import PredictorConfig, train

        try:
            with_prior = self.config.prior and assistments_path() is not None
        except PredictorDataMissing:
            with_prior = False
        # ~400k prior attempts take the build's batches; product attempts alone are a few
        # thousand, where batches of 1024 would leave a handful of steps per epoch
        batch = PredictorConfig.batch_size if with_prior else min(1024, max(64, len(snapshot.attempts) // 60))
        config = PredictorConfig(
            seed=self.config.seed, epochs=4 if self.config.quick else PredictorConfig.epochs, batch_size=batch
        )
        held_out = self.held_out("predictor")
        trained = train(
            work,
            seed=self.config.seed,
            config=config,
            product=product_sequences(snapshot),
            prior=self.config.prior,
            part_of=lambda seq: "test" if seq.user in held_out else student_part(seq),
        )
        used_prior = trained.data.get("source") is not None
        trained.data["parent_test_held_out"] = len(held_out)
        trained.data["dataset_snapshot"] = snapshot.date
        trained.data["assistments_prior"] = used_prior
        return trained, used_prior

    # Gates ----------------------------------------------------------------------------
    def previous_test(self, name: str, parent_entry: dict, parent_manifest: dict, snapshot: Snapshot):
        """The parent model's test split, rebuilt: from the snapshot it was trained on (a
        model of this job) or from its own seeded split (a model of `model_export build`)."""
        data = parent_entry.get("data") or {}
        date = data.get("dataset_snapshot")
        if name == "confusion":
            from model_export.confusion_data import build

            seed = int(parent_manifest.get("build", {}).get("seed", 42))
            items = build(seed)["test"]
            how = f"bootstrap test split (seed {seed}, held-out topics)"
            if date:
                source = snapshot if date == snapshot.date else load_snapshot(self.datasets, date)
                items = items + product_conversations(source)["test"]
                how += f" + hash test split of the labelled conversations of snapshot {source.date}"
            return items, how
        if date:
            source = snapshot if date == snapshot.date else load_snapshot(self.datasets, date)
            if name == "intent":
                return intent_split(source).test, f"hash test split of snapshot {source.date}"
            prior = bool(data.get("assistments_prior"))
            sequences = predictor_sequences(source, prior, self.config.seed)
            return [s for s in sequences if student_part(s) == "test"], f"hash test split of snapshot {source.date}"
        seed = parent_manifest.get("build", {}).get("seed", 42)
        if name == "intent":
            from model_export.intent_data import load_examples, stratified_split

            return stratified_split(load_examples(), seed=seed).test, f"seeded stratified test split (seed {seed})"
        from model_export.predictor_data import (
            PredictorDataMissing,
            add_difficulty_and_times,
            assistments_path,
            read_dkt,
            skill_difficulty,
            split_students,
        )

        try:
            sequences = read_dkt(assistments_path())
        except PredictorDataMissing:
            return [], "the parent's test split cannot be rebuilt here (no ASSISTments file)"
        # train_predictor.prepare's split and difficulty, without building training rows
        rest, test = split_students(sequences, 0.1, seed)
        train, _ = split_students(rest, 0.1 / 0.9, seed + 7)
        add_difficulty_and_times(sequences, skill_difficulty(train), seed)
        return test, f"ASSISTments seeded student test split (seed {seed})"

    def gate(self, snapshot, entries, trained, int8_failures, candidate, parent_dir, parent_manifest) -> dict:
        gates: dict[str, dict] = {}
        for name, agreement in int8_failures.items():
            gates[name] = {"int8": {"passed": False, "values": agreement, "reason": "INT8 disagrees with FP32"}}
        for name in trained:
            per: dict[str, dict] = {}
            check = entries[name]["int8_check"]
            per["int8"] = {
                "passed": bool(check["passed"]),
                "scheme": check["scheme"],
                "values": check["values"],
                "reason": "INT8 agrees with FP32" if check["passed"] else "INT8 disagrees with FP32",
            }
            metric = "accuracy" if name == "intent" else "auc"  # predictor, confusion
            parent_entry = (parent_manifest or {}).get("models", {}).get(name)
            if parent_entry is None:
                per["previous_test"] = {
                    "passed": True,
                    "metric": metric,
                    "reason": "no parent model to compare with (first version of this model)",
                }
            else:
                items, how = self.previous_test(name, parent_entry, parent_manifest, snapshot)
                if not items:
                    per["previous_test"] = {"passed": True, "metric": metric, "reason": how, "n": 0}
                else:
                    score = {"intent": intent_accuracy, "confusion": confusion_auc}.get(name, predictor_auc)
                    old = score(parent_dir, parent_entry, items)
                    new = score(candidate, entries[name], items)
                    drop = old - new
                    ok = not math.isnan(new) and (math.isnan(old) or drop <= self.config.max_drop + 1e-9)
                    per["previous_test"] = {
                        "passed": ok,
                        "metric": metric,
                        "split": how,
                        "n": len(items) if name != "predictor" else sum(len(s.topics) for s in items),
                        "parent": round(old, 4),
                        "new": round(new, 4),
                        "drop": round(drop, 4),
                        "max_drop": self.config.max_drop,
                        "reason": f"{metric} {new:.4f} vs parent {old:.4f} on the parent's test split "
                        f"(drop {drop * 100:+.1f} points, limit {self.config.max_drop * 100:.0f})",
                    }
            if name == "intent":
                wrong = golden_failures(candidate, entries[name])
                per["golden"] = {
                    "passed": not wrong,
                    "wrong": wrong[:10],
                    "n_wrong": len(wrong),
                    "reason": "every golden query right" if not wrong else f"{len(wrong)} golden queries wrong",
                }
            gates[name] = per
            log.info("gate %s: %s", name, {k: (v["passed"], v["reason"]) for k, v in per.items()})
        return gates

    # Report ---------------------------------------------------------------------------
    def write_report(self) -> None:
        from model_export.report import render_report

        markdown, svg = render_report(self.result)
        self.store.write_bytes(self.key("metrics.svg"), svg.encode())
        self.store.write_bytes(self.key("report.md"), markdown.encode())


def run_job(config: JobConfig) -> dict:
    return Job(config).run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_export.retrain", description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, help="the training run id (training_runs.id)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: intent,predictor,confusion")
    parser.add_argument("--date", default="latest", help="dataset snapshot date (YYYY-MM-DD) or 'latest'")
    parser.add_argument("--store", help="model store URI (default MODEL_STORE_URI / .state/models)")
    parser.add_argument("--datasets", help="dataset store URI (default DATASETS_URI)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="few epochs (tests, demos)")
    parser.add_argument("--no-prior", action="store_true", help="predictor without the ASSISTments prior")
    parser.add_argument("--max-drop", type=float, default=MAX_DROP)
    parser.add_argument(
        "--silver-weight", type=float, default=SILVER_WEIGHT, help="weight of a silver (LLM) label; 0 = none"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    result = run_job(
        JobConfig(
            run_id=args.run,
            store=args.store,
            datasets=args.datasets,
            date=args.date,
            models=[m.strip() for m in args.models.split(",") if m.strip()],
            seed=args.seed,
            prior=not args.no_prior,
            quick=args.quick,
            max_drop=args.max_drop,
            silver_weight=args.silver_weight,
        )
    )
    summary = {k: result.get(k) for k in ("run_id", "status", "version", "parent", "reasons", "error", "timings")}
    print(json.dumps(summary))
    return EXIT[result["status"]]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
