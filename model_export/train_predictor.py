"""Build step of the task-outcome predictor: data -> split -> fit -> ONNX + meta file.

The network, its loss, its fitting and its graph are `model_export/predictor_net.py`;
the data (ASSISTments 2009 bootstrap and product attempts, rows with the serving code's
features) is `model_export/predictor_data.py`. This module joins them: `prepare` splits
by student (80/10/10 in the build; the retraining job passes its stable hash split) and
builds the rows, `train` fits, measures, exports and describes the model for the
manifest. Budget: about a minute on one core for ~400k attempts with the defaults.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from model_export.predictor_data import (
    FILE,
    SUBDIR,
    TIME_BASE_S,
    TIME_DIFFICULTY_SLOPE,
    TIME_NOISE_SD,
    TIME_SKILL_SD,
    TIME_STUDENT_SD,
    TIME_WRONG_PENALTY,
    PredictorDataMissing,
    Rows,
    Sequence,
    add_difficulty_and_times,
    assistments_path,
    read_attempts_jsonl,
    read_dkt,
    skill_difficulty,
    split_students,
    to_rows,
    vocabulary,
)
from model_export.predictor_net import (
    PredictorConfig,
    PredictorNet,
    correctness_metrics,
    export_onnx,
    feeds_of,
    fit,
    predict,
    time_metrics,
)
from model_export.trained import TrainedModel
from model_export.training import file_sha256
from shared.prediction.features import FEATURE_NAMES, N_FEATURES, RECENT_STEP_FEATURES

__all__ = [
    "PredictorConfig",
    "PredictorNet",
    "Prepared",
    "correctness_metrics",
    "export_onnx",
    "feeds_of",
    "fit",
    "predict",
    "prepare",
    "time_metrics",
    "train",
]

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")

META_FILE = "predictor_meta.json"
#: a JSONL export of the product's completed attempts to train on as well
ATTEMPTS_ENV = "PREDICTOR_ATTEMPTS_JSONL"
#: without ASSISTments, fewer product attempts than this are not worth a network
MIN_PRODUCT_ATTEMPTS = 2000


@dataclass
class Prepared:
    """Sequences split by student, vocabularies from the training part, flat rows."""

    train: Rows
    val: Rows
    test: Rows | None
    users: dict[str, int]
    topics: dict[str, int]
    difficulty: dict[str, int]
    counts: dict
    parts: dict[str, list[Sequence]]


def prepare(
    sequences: list[Sequence],
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    simulate_times: bool = True,
    part_of: Callable[[Sequence], str] | None = None,
    window: int = PredictorConfig.window,
) -> Prepared:
    """Split by student, derive difficulty from the training part, build rows.

    `part_of` (student -> 'train' | 'val' | 'test') replaces the seeded split; the
    retraining job passes the stable hash split. Vocabularies come from training
    students only: validation/test students are new users (index 0), exactly like a
    student the deployed model has never seen.
    """
    if part_of is not None:
        parts = [part_of(s) for s in sequences]
        train, val, test = ([s for s, p in zip(sequences, parts, strict=True) if p == k] for k in PARTS)
    else:
        rest, test = split_students(sequences, test_fraction, seed) if test_fraction else (sequences, [])
        train, val = split_students(rest, val_fraction / max(1e-9, 1 - test_fraction), seed + 7)
    difficulty = skill_difficulty(train)
    if simulate_times:
        add_difficulty_and_times(sequences, difficulty, seed)
    users = vocabulary([s.user for s in train])
    topics = vocabulary([t for s in train for t in s.topics])
    counts = {
        "students": {"train": len(train), "val": len(val), "test": len(test)},
        "attempts": {
            "train": sum(len(s.topics) for s in train),
            "val": sum(len(s.topics) for s in val),
            "test": sum(len(s.topics) for s in test),
        },
        "topics": len(topics),
    }
    return Prepared(
        to_rows(train, users, topics, window),
        to_rows(val, users, topics, window),
        to_rows(test, users, topics, window) if test else None,
        users,
        topics,
        difficulty,
        counts,
        {"train": train, "val": val, "test": test},
    )


def train(
    work_dir: Path,
    *,
    seed: int = 42,
    config: PredictorConfig | None = None,
    data_path: Path | None = None,
    attempts_path: Path | None = None,
    product: list[Sequence] | None = None,
    prior: bool = True,
    part_of: Callable[[Sequence], str] | None = None,
) -> TrainedModel:
    """Train (80/10/10 by student), export predictor.onnx + its meta file.

    Data: ASSISTments when ../shared/data has it, plus the product's own completed
    attempts when an export exists (`attempts_path`, else $PREDICTOR_ATTEMPTS_JSONL;
    written by `python -m shared.prediction.export`): those bring real times and the
    product's user and topic ids. Raises PredictorDataMissing when there is neither, so
    the build can skip the model (serving then answers with the IRT fallback).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = config or PredictorConfig(seed=seed)
    sequences: list[Sequence] = []
    path: Path | None
    path = data_path
    if not prior:
        path = None
    elif path is None:
        try:
            path = assistments_path()
        except PredictorDataMissing:
            path = None
    if path is not None and path.is_file():
        sequences += read_dkt(path)
    else:
        path = None
    env_attempts = os.environ.get(ATTEMPTS_ENV)
    attempts = attempts_path or (Path(env_attempts) if env_attempts else None)
    if product is None:
        product = read_attempts_jsonl(attempts) if attempts is not None and attempts.is_file() else []
    else:
        attempts = None  # handed over by the caller (the retraining job's snapshot)
    n_product = sum(len(s.topics) for s in product)
    sequences += product
    if path is None and n_product < MIN_PRODUCT_ATTEMPTS:
        raise PredictorDataMissing(
            f"no ASSISTments file and {n_product} product attempts (< {MIN_PRODUCT_ATTEMPTS}): "
            "the network predictor cannot be trained"
        )
    prepared = prepare(sequences, seed=seed, val_fraction=0.1, test_fraction=0.1, part_of=part_of, window=config.window)
    log.info("predictor: %s", prepared.counts)
    model, history = fit(prepared.train, prepared.val, len(prepared.users), len(prepared.topics), config)
    metrics: dict = {}
    for part in ("val", "test"):
        rows: Rows = getattr(prepared, part)
        p, s = predict(model, rows)
        metrics[part] = {"correct": correctness_metrics(rows.correct, p), "time": time_metrics(rows.log_seconds, s)}
    metrics |= {
        "train_seconds": round(time.perf_counter() - started, 1),
        "history": history,
        "config": asdict(config),
        "note": (
            "val/test students are unseen (user index 0 = 'unknown'), as a new product user is. "
            "Correctness is real data; ASSISTments times are SIMULATED log-normal times (see "
            "data.times), so on them the time metrics only show the time head learned that model."
        ),
    }
    log.info("predictor: test %s", metrics["test"])
    onnx_path = export_onnx(model, work_dir / "predictor.onnx")
    meta_path = work_dir / META_FILE
    meta = {
        "inputs": {
            "user": ["batch"],
            "topic": ["batch"],
            "difficulty": ["batch"],
            "features": ["batch", N_FEATURES],
            "recent_topic": ["batch", config.window],
            "recent": ["batch", config.window, len(RECENT_STEP_FEATURES)],
        },
        "outputs": {"logit": "P(correct) = sigmoid(logit)", "seconds": "median seconds (log-normal)"},
        "feature_names": list(FEATURE_NAMES),
        "feature_encoding": "shared.prediction.features.encode",
        "recent_window": config.window if config.step_dim else 0,
        "recent_step_features": list(RECENT_STEP_FEATURES),
        "recent_encoding": "shared.prediction.features.encode_recent (topic ids through 'topics')",
        "unknown_index": 0,
        "users": prepared.users,
        "topics": prepared.topics,
        "id_source": "assistments2009 (ids prefixed 'a:') and product attempts (their own ids)"
        if n_product
        else "assistments2009 (ids prefixed 'a:'; product ids map to the unknown rows)",
        "time_head_trained_on": (
            f"simulated log-normal times over ASSISTments attempts and {n_product} real product attempts"
            if n_product and path
            else "real product attempt times"
            if n_product
            else "simulated log-normal times over ASSISTments attempts (no real times)"
        ),
    }
    meta_path.write_text(json.dumps(meta, separators=(",", ":")) + "\n", encoding="utf-8")
    test_rows = prepared.test if prepared.test is not None else prepared.val
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(test_rows), size=min(4096, len(test_rows)), replace=False)
    sample = test_rows.take(np.sort(pick))
    # half the check rows with known ids, so the gate also covers the learned rows
    known = prepared.train.take(
        np.sort(rng.choice(len(prepared.train), size=min(2048, len(prepared.train)), replace=False))
    )
    check_feeds = [
        feeds_of(part.take(np.arange(i, min(i + 1024, len(part)))))
        for part in (sample, known)
        for i in range(0, len(part), 1024)
    ]
    return TrainedModel(
        name="predictor",
        fp32_onnx=onnx_path,
        extra_files=[meta_path],
        metrics=metrics,
        data={
            "source": (
                f"../shared/data/{SUBDIR}/{FILE} (ASSISTments 2009-2010 skill builder, DKT format)" if path else None
            ),
            "sha256": file_sha256(path) if path else None,
            "split": "by student, 80/10/10, " + ("stable hash of the user id" if part_of else "seed-deterministic"),
            **prepared.counts,
            "difficulty": "ASSISTments: quintile of the skill's training success rate (1 = easiest); "
            "product: the task's own",
            "times": {
                "kind": "SIMULATED for ASSISTments (the DKT release has no response times); real for product attempts",
                "model": "log t = log(base) + skill intensity + slope (difficulty - 3) - student speed "
                "+ penalty if wrong + noise",
                "base_seconds": TIME_BASE_S,
                "skill_sd": TIME_SKILL_SD,
                "student_sd": TIME_STUDENT_SD,
                "difficulty_slope": TIME_DIFFICULTY_SLOPE,
                "wrong_penalty": TIME_WRONG_PENALTY,
                "noise_sd": TIME_NOISE_SD,
            },
            "product_attempts": n_product,
            "product_attempts_sha256": file_sha256(attempts) if n_product and attempts else None,
        },
        check_feeds=check_feeds,
        output_kind="logit",
    )


if __name__ == "__main__":  # pragma: no cover - manual run: python -m model_export.train_predictor
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = train(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/predictor-work"))
    print(json.dumps({k: v for k, v in result.metrics.items() if k != "history"}, indent=2))
