"""Train the task-outcome predictor (seed 003's "V2 embedding model") -> ONNX.

Inputs per task: learned embeddings of the user, the topic and the difficulty (1-5),
plus the 11 history features of `shared.prediction.features` (encoded by its `encode`).
A shared two-layer MLP feeds two heads:
- `logit`: P(correct) = sigmoid(logit), trained with binary cross-entropy;
- `seconds`: expected (median) seconds = 60 * softplus(z), trained on log-seconds
  (squared error), so it is a log-normal median, the LNIRT view of response times.
Index 0 of the user and topic tables is 'unknown': during training ids are replaced by
it at random (p_mask_user, p_mask_topic), so a new user or an unseen topic gets an
answer learned from the history features alone, never an error.

Data: see `model_export/predictor_data.py` (ASSISTments 2009 bootstrap, split by
student 80/10/10; its times are simulated and the manifest says so). Budget: about
a minute on one core for ~400k attempts with the defaults below.
The graph takes `user`, `topic`, `difficulty` (int64, (batch,)) and `features`
(float32, (batch, 11)) and returns `logit` and `seconds` (float32, (batch,)).
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
import torch
from torch import nn

from model_export.onnx_export import export_onnx as _export_onnx
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
from model_export.trained import TrainedModel
from model_export.training import file_sha256, roc_auc, run_epochs, seed_everything
from shared.prediction.features import FEATURE_NAMES, N_FEATURES

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")

META_FILE = "predictor_meta.json"
#: a JSONL export of the product's completed attempts to train on as well
ATTEMPTS_ENV = "PREDICTOR_ATTEMPTS_JSONL"
#: without ASSISTments, fewer product attempts than this are not worth a network
MIN_PRODUCT_ATTEMPTS = 2000
SECONDS_SCALE = 60.0


@dataclass(frozen=True)
class PredictorConfig:
    user_dim: int = 8
    topic_dim: int = 16
    difficulty_dim: int = 4
    hidden: int = 64
    epochs: int = 6
    batch_size: int = 1024
    lr: float = 3e-3
    weight_decay: float = 1e-5
    embedding_decay: float = 1e-6  # L2 on the looked-up rows, per row
    p_mask_user: float = 0.3
    p_mask_topic: float = 0.1
    time_weight: float = 0.5
    seed: int = 42
    threads: int = 1  # small matrices; leaves the second core to the rest of the build


class PredictorNet(nn.Module):
    """user/topic/difficulty embeddings + 11 features -> MLP -> (logit, seconds)."""

    def __init__(self, n_users: int, n_topics: int, config: PredictorConfig) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users + 1, config.user_dim)
        self.topic = nn.Embedding(n_topics + 1, config.topic_dim)
        self.difficulty = nn.Embedding(6, config.difficulty_dim)
        width = config.user_dim + config.topic_dim + config.difficulty_dim + N_FEATURES
        self.body = nn.Sequential(
            nn.Linear(width, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
        )
        self.correct_head = nn.Linear(config.hidden, 1)
        self.time_head = nn.Linear(config.hidden, 1)
        for table in (self.user, self.topic, self.difficulty):
            nn.init.normal_(table.weight, std=0.05)

    def forward(
        self, user: torch.Tensor, topic: torch.Tensor, difficulty: torch.Tensor, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([self.user(user), self.topic(topic), self.difficulty(difficulty), features], dim=-1)
        h = self.body(x)
        logit = self.correct_head(h).squeeze(-1)
        seconds = SECONDS_SCALE * nn.functional.softplus(self.time_head(h).squeeze(-1))
        return logit, seconds


def _tensors(rows: Rows) -> dict[str, torch.Tensor]:
    return {
        "user": torch.from_numpy(rows.user),
        "topic": torch.from_numpy(rows.topic),
        "difficulty": torch.from_numpy(rows.difficulty),
        "features": torch.from_numpy(rows.features),
        "correct": torch.from_numpy(rows.correct),
        "log_seconds": torch.from_numpy(rows.log_seconds),
    }


def _loss(model: PredictorNet, batch: dict[str, torch.Tensor], config: PredictorConfig) -> torch.Tensor:
    logit, seconds = model(batch["user"], batch["topic"], batch["difficulty"], batch["features"])
    loss = nn.functional.binary_cross_entropy_with_logits(logit, batch["correct"])
    known = ~torch.isnan(batch["log_seconds"])
    if known.any():
        err = torch.log(seconds[known].clamp_min(1e-3)) - batch["log_seconds"][known]
        loss = loss + config.time_weight * (err**2).mean()
    return loss


@torch.no_grad()
def predict(model: PredictorNet, rows: Rows, batch_size: int = 65536) -> tuple[np.ndarray, np.ndarray]:
    """(P(correct), seconds) for every row."""
    model.eval()
    t = _tensors(rows)
    ps, ss = [], []
    for i in range(0, len(rows), batch_size):
        sl = slice(i, i + batch_size)
        logit, seconds = model(t["user"][sl], t["topic"][sl], t["difficulty"][sl], t["features"][sl])
        ps.append(torch.sigmoid(logit).numpy())
        ss.append(seconds.numpy())
    return np.concatenate(ps), np.concatenate(ss)


def correctness_metrics(y: np.ndarray, p: np.ndarray) -> dict:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    yb = (y >= 0.5).astype(np.float64)
    return {
        "n": len(y),
        "auc": round(roc_auc(yb, p), 4),
        "accuracy": round(float(((p >= 0.5) == (yb == 1)).mean()), 4),
        "log_loss": round(float(-(yb * np.log(p) + (1 - yb) * np.log(1 - p)).mean()), 4),
        "brier": round(float(((p - yb) ** 2).mean()), 4),
        "base_rate": round(float(yb.mean()), 4),
    }


def time_metrics(log_seconds: np.ndarray, seconds: np.ndarray) -> dict:
    known = ~np.isnan(log_seconds)
    if not known.any():
        return {"n": 0}
    err = np.log(np.maximum(seconds[known], 1e-3)) - log_seconds[known]
    baseline = log_seconds[known] - np.median(log_seconds[known])
    return {
        "n": int(known.sum()),
        "mae_log_seconds": round(float(np.abs(err).mean()), 4),
        "median_abs_pct_error": round(float(np.median(np.abs(np.expm1(err)))) * 100, 1),
        "mae_log_seconds_constant_median": round(float(np.abs(baseline).mean()), 4),
    }


def fit(
    train_rows: Rows,
    val_rows: Rows,
    n_users: int,
    n_topics: int,
    config: PredictorConfig,
) -> tuple[PredictorNet, list[dict]]:
    """AdamW on BCE + time loss with random id masking; keeps the best validation epoch."""
    seed_everything(config.seed, config.threads)
    rng = np.random.default_rng(config.seed)
    model = PredictorNet(n_users, n_topics, config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    t = _tensors(train_rows)
    v = _tensors(val_rows)
    n = len(train_rows)

    def train_epoch(_epoch: int) -> dict:
        order = torch.from_numpy(rng.permutation(n))
        user = t["user"].clone()
        user[torch.from_numpy(rng.random(n) < config.p_mask_user)] = 0
        topic = t["topic"].clone()
        topic[torch.from_numpy(rng.random(n) < config.p_mask_topic)] = 0
        total = 0.0
        for i in range(0, n, config.batch_size):
            idx = order[i : i + config.batch_size]
            batch = {k: val[idx] for k, val in t.items()}
            batch["user"], batch["topic"] = user[idx], topic[idx]
            loss = _loss(model, batch, config)
            if config.embedding_decay:
                loss = loss + config.embedding_decay * (
                    model.user(batch["user"]).pow(2).sum() + model.topic(batch["topic"]).pow(2).sum()
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        return {"train_loss": round(total / n, 4)}

    def validate() -> dict:
        with torch.no_grad():
            val_loss = float(_loss(model, v, config))
        p, _ = predict(model, val_rows)
        return {"val_loss": round(val_loss, 4), "val_auc": round(roc_auc(val_rows.correct, p), 4)}

    history = run_epochs(model, config.epochs, train_epoch, validate, name="predictor", keep_best_by="val_loss")
    return model, history


def export_onnx(model: PredictorNet, path: Path) -> Path:
    names = ["user", "topic", "difficulty", "features"]
    feeds = (
        torch.zeros(2, dtype=torch.int64),
        torch.zeros(2, dtype=torch.int64),
        torch.full((2,), 3, dtype=torch.int64),
        torch.zeros(2, N_FEATURES),
    )
    return _export_onnx(
        model,
        feeds,
        path,
        input_names=names,
        output_names=["logit", "seconds"],
        dynamic_axes={**{k: {0: "batch"} for k in names}, "logit": {0: "batch"}, "seconds": {0: "batch"}},
    )


def feeds_of(rows: Rows) -> dict[str, np.ndarray]:
    return {
        "user": rows.user,
        "topic": rows.topic,
        "difficulty": rows.difficulty,
        "features": rows.features,
    }


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
        to_rows(train, users, topics),
        to_rows(val, users, topics),
        to_rows(test, users, topics) if test else None,
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
    prepared = prepare(sequences, seed=seed, val_fraction=0.1, test_fraction=0.1, part_of=part_of)
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
        "inputs": {"user": ["batch"], "topic": ["batch"], "difficulty": ["batch"], "features": ["batch", N_FEATURES]},
        "outputs": {"logit": "P(correct) = sigmoid(logit)", "seconds": "median seconds (log-normal)"},
        "feature_names": list(FEATURE_NAMES),
        "feature_encoding": "shared.prediction.features.encode",
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
