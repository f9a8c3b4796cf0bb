"""Train the confusion detector (GRU over the last 3 message embeddings + timing) -> ONNX.

Inputs and features are defined once in `shared.models.confusion` (the serving class);
this module builds the same inputs from the bootstrap conversations of
`model_export.confusion_data`, embedded with the FP32 MiniLM sentence encoder (the model
the served INT8 encoder is checked against).

Network: each message embedding is projected to 64 dims (tanh) and concatenated with its
timing features and its cosine similarity to the previous and the one-before messages
(computed inside the graph: a rephrased question is close to the question it repeats);
a GRU reads the 3 steps oldest first and a linear layer maps its last state to one logit.
The graph exported takes `embeddings` (batch, 3, 384) and `timing` (batch, 3, 3) float32
and returns `logit` (batch,); P(confused) = sigmoid(logit).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_export.base_model import minilm_dir
from model_export.calibration import expected_calibration_error
from model_export.confusion_data import Conversation, build, describe
from model_export.onnx_export import export_onnx as _export_onnx
from model_export.trained import TrainedModel
from model_export.training import roc_auc, run_epochs, seed_everything
from shared.models.confusion import (
    EMBEDDING_DIM,
    N_TIMING,
    WINDOW,
    MessageTiming,
    build_inputs,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConfusionConfig:
    projection: int = 64
    hidden: int = 48
    dropout: float = 0.2
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    threshold: float = 0.5
    seed: int = 42
    threads: int = 1  # tiny matrices: a second thread only adds synchronisation


class ConfusionNet(nn.Module):
    """Projected embeddings + timing + in-graph similarities -> GRU -> logit."""

    def __init__(self, projection: int = 64, hidden: int = 48, dropout: float = 0.2) -> None:
        super().__init__()
        self.project = nn.Linear(EMBEDDING_DIM, projection)
        self.dropout = nn.Dropout(dropout)
        self.gru = nn.GRU(projection + N_TIMING + 2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def forward(self, embeddings: torch.Tensor, timing: torch.Tensor) -> torch.Tensor:
        present = timing[..., :1]
        sims = []
        for shift in (1, 2):
            prev = torch.cat([torch.zeros_like(embeddings[:, :shift]), embeddings[:, :-shift]], dim=1)
            sims.append((embeddings * prev).sum(dim=-1, keepdim=True))
        projected = self.dropout(torch.tanh(self.project(embeddings))) * present
        x = torch.cat([projected, timing, *sims], dim=-1)
        _, state = self.gru(x)
        return self.head(state[-1]).squeeze(-1)


def embed_texts(texts: list[str]) -> dict[str, np.ndarray]:
    """Unit-length FP32 MiniLM sentence embeddings of each distinct text."""
    from sentence_transformers import SentenceTransformer

    unique = sorted(set(texts))
    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    vectors = model.encode(unique, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return {text: np.asarray(v, dtype=np.float32) for text, v in zip(unique, vectors, strict=True)}


def to_arrays(
    conversations: list[Conversation], vectors: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 3, 384) embeddings, (n, 3, 3) timing features, (n,) labels: the serving
    class's own `build_inputs`, so training and serving inputs cannot drift apart."""
    embs, feats = [], []
    for conv in conversations:
        emb, feat = build_inputs(
            np.stack([vectors[m.text] for m in conv.messages]),
            [MessageTiming(m.seconds_since_previous, len(m.text)) for m in conv.messages],
        )
        embs.append(emb[0])
        feats.append(feat[0])
    labels = np.array([c.label for c in conversations], dtype=np.float32)
    return np.stack(embs), np.stack(feats), labels


@torch.no_grad()
def predict_proba(model: ConfusionNet, emb: np.ndarray, feat: np.ndarray) -> np.ndarray:
    model.eval()
    logits = model(torch.from_numpy(emb), torch.from_numpy(feat))
    return torch.sigmoid(logits).numpy()


def evaluate(
    model: ConfusionNet,
    conversations: list[Conversation],
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    threshold: float,
) -> dict:
    emb, feat, y = arrays
    p = predict_proba(model, emb, feat)
    pred = (p >= threshold).astype(np.float32)
    by_scenario: dict[str, list[bool]] = defaultdict(list)
    for conv, ok in zip(conversations, pred == y, strict=True):
        by_scenario[conv.scenario].append(bool(ok))
    two_class = np.stack([1 - p, p], axis=1)
    return {
        "n": len(y),
        "auc": round(roc_auc(y, p), 4),
        "accuracy": round(float((pred == y).mean()), 4),
        "brier": round(float(((p - y) ** 2).mean()), 4),
        "ece": round(expected_calibration_error(two_class, y.astype(int)), 4),
        "accuracy_by_scenario": {name: round(sum(v) / len(v), 3) for name, v in sorted(by_scenario.items())},
    }


def export_onnx(model: ConfusionNet, path: Path) -> Path:
    """FP32 ONNX with a dynamic batch axis (the window is always 3)."""
    return _export_onnx(
        model,
        (torch.zeros(2, WINDOW, EMBEDDING_DIM), torch.zeros(2, WINDOW, N_TIMING)),
        path,
        input_names=["embeddings", "timing"],
        output_names=["logit"],
        dynamic_axes={"embeddings": {0: "batch"}, "timing": {0: "batch"}, "logit": {0: "batch"}},
    )


def fit(
    train_arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    val_arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: ConfusionConfig,
) -> tuple[ConfusionNet, list[dict]]:
    """AdamW + BCE; keeps the epoch with the lowest validation loss."""
    seed_everything(config.seed, config.threads)
    model = ConfusionNet(config.projection, config.hidden, config.dropout)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    emb, feat, y = (torch.from_numpy(a) for a in train_arrays)
    v_emb, v_feat, v_y = (torch.from_numpy(a) for a in val_arrays)
    generator = torch.Generator().manual_seed(config.seed)

    def train_epoch(_epoch: int) -> dict:
        order = torch.randperm(len(y), generator=generator)
        total = 0.0
        for i in range(0, len(y), config.batch_size):
            idx = order[i : i + config.batch_size]
            loss = loss_fn(model(emb[idx], feat[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(idx)
        return {"train_loss": round(total / len(y), 4)}

    @torch.no_grad()
    def validate() -> dict:
        return {"val_loss": round(loss_fn(model(v_emb, v_feat), v_y).item(), 4)}

    history = run_epochs(model, config.epochs, train_epoch, validate, name="confusion", keep_best_by="val_loss")
    return model, history


def train(
    work_dir: Path,
    *,
    seed: int = 42,
    product: dict[str, list[Conversation]] | None = None,
    data_extra: dict | None = None,
) -> TrainedModel:
    """Build the bootstrap set, train, evaluate on held-out topics, export confusion.onnx.

    `product`: labelled conversations of real students per part (the retraining job
    splits them by a hash of their id), added to the bootstrap set's parts; `data_extra`
    is merged into the manifest's data description."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    config = ConfusionConfig(seed=seed)
    data = build(seed)
    for part, rows in (product or {}).items():
        data[part] = data[part] + rows
    texts = [m.text for part in data.values() for conv in part for m in conv.messages]
    log.info(
        "confusion: %s conversations, embedding %d distinct messages",
        {k: len(v) for k, v in data.items()},
        len(set(texts)),
    )
    vectors = embed_texts(texts)
    arrays = {part: to_arrays(rows, vectors) for part, rows in data.items()}
    model, history = fit(arrays["train"], arrays["val"], config)
    metrics = {part: evaluate(model, data[part], arrays[part], config.threshold) for part in ("val", "test")}
    metrics |= {
        "train_seconds": round(time.perf_counter() - started, 1),
        "history": history,
        "config": asdict(config),
        "note": "measured on held-out topics of the simulated bootstrap set, not on real "
        "students: it shows the model learned the bootstrap cues, not real-world accuracy",
    }
    log.info("confusion: test %s", metrics["test"])
    onnx_path = export_onnx(model, work_dir / "confusion.onnx")
    config_path = work_dir / "confusion_config.json"
    config_path.write_text(
        json.dumps(
            {
                "window": WINDOW,
                "embedding_dim": EMBEDDING_DIM,
                "inputs": {"embeddings": ["batch", WINDOW, EMBEDDING_DIM], "timing": ["batch", WINDOW, N_TIMING]},
                "timing_features": [
                    "present",
                    "gap: log1p(seconds, <=3600)/log1p(3600)",
                    "length: log1p(chars, <=2000)/log1p(2000)",
                ],
                "padding": "left (oldest first; newest message last)",
                "output": "logit; P(confused) = sigmoid(logit)",
                "threshold": config.threshold,
                "embedding_model": "all-MiniLM-L6-v2 (mean pooled, unit length)",
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    t_emb, t_feat, _ = arrays["test"]
    check_feeds = [{"embeddings": t_emb[i : i + 128], "timing": t_feat[i : i + 128]} for i in range(0, len(t_emb), 128)]
    return TrainedModel(
        name="confusion",
        fp32_onnx=onnx_path,
        extra_files=[config_path],
        metrics=metrics,
        data=describe(data, seed) | (data_extra or {}),
        check_feeds=check_feeds,
        output_kind="logit",
    )


if __name__ == "__main__":  # pragma: no cover - manual run: python -m model_export.train_confusion
    import sys

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    result = train(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/confusion-work"))
    print(json.dumps({k: v for k, v in result.metrics.items() if k != "history"}, indent=2))
