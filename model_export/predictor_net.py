"""The task-outcome predictor network (seed 003's "V2 embedding model"), its fitting and its ONNX graph.

Inputs per task: learned embeddings of the user, the topic and the difficulty (1-5),
the 11 history features of `shared.prediction.features` (encoded by its `encode`), and
the student's last RECENT_WINDOW attempts as a sequence (`encode_recent`): each step is
DKT's input, a learned vector for "right on topic k" and one for "wrong on topic k"
mixed by the credit, beside [present, credit, same topic]; a small GRU reads the steps,
its last state joins the MLP input and, as DKT's output layer, adds its dot product with
a learned vector of the task's topic to the logit. The sequence is
what the aggregates cannot carry: which topics came just before, in what order, and
how they went (on the ASSISTments benchmark split it lifts held-out AUC from 0.8016 to
0.8113; see docs/prediction.md).
A shared two-layer MLP feeds two heads:
- `logit`: P(correct) = sigmoid(logit), trained with binary cross-entropy;
- `seconds`: expected (median) seconds = 60 * softplus(z), trained on log-seconds
  (squared error), so it is a log-normal median, the LNIRT view of response times.
Index 0 of the user and topic tables is 'unknown': during training ids are replaced by
it at random (p_mask_user, p_mask_topic), so a new user or an unseen topic gets an
answer learned from the history alone, never an error.

The graph takes `user`, `topic`, `difficulty` (int64, (batch,)), `features` (float32,
(batch, 11)), `recent_topic` (int64, (batch, window)) and `recent` (float32, (batch,
window, 3)) and returns `logit` and `seconds` (float32, (batch,)). The data side (rows,
splits, the build step) is `model_export/train_predictor.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model_export.onnx_export import export_onnx as _export_onnx
from model_export.predictor_data import Rows
from model_export.training import roc_auc, run_epochs, seed_everything
from shared.prediction.features import N_FEATURES, RECENT_STEP_FEATURES, RECENT_WINDOW

SECONDS_SCALE = 60.0
INPUTS = ("user", "topic", "difficulty", "features", "recent_topic", "recent")


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
    window: int = RECENT_WINDOW  # steps of the recent sequence the GRU reads
    step_dim: int = 32  # GRU state size (0 = no sequence encoder: the seed's network)
    step_embedding: int = 16  # per topic, one vector for a right and one for a wrong answer
    sequence_dropout: float = 0.2  # on the GRU state entering the MLP: small product data overfits it
    attention_dim: int = 0  # task-topic attention over the recent steps (SAKT's read); 0 = none
    time_weight: float = 0.5
    seed: int = 42
    threads: int = 1  # small matrices; leaves the second core to the rest of the build


class PredictorNet(nn.Module):
    """ids + 11 features + a GRU over the recent attempts -> MLP -> (logit, seconds)."""

    def __init__(self, n_users: int, n_topics: int, config: PredictorConfig) -> None:
        super().__init__()
        self.user = nn.Embedding(n_users + 1, config.user_dim)
        self.topic = nn.Embedding(n_topics + 1, config.topic_dim)
        self.difficulty = nn.Embedding(6, config.difficulty_dim)
        self.step_dim = config.step_dim
        self.window = config.window
        width = config.user_dim + config.topic_dim + config.difficulty_dim + N_FEATURES
        if config.step_dim:
            # DKT's input: what was answered how. A right and a wrong answer on topic k
            # are two learned vectors, mixed by the credit (partial credit lies between)
            self.step_right = nn.Embedding(n_topics + 1, config.step_embedding)
            self.step_wrong = nn.Embedding(n_topics + 1, config.step_embedding)
            nn.init.normal_(self.step_right.weight, std=0.05)
            nn.init.normal_(self.step_wrong.weight, std=0.05)
            self.sequence = nn.GRU(config.step_embedding + len(RECENT_STEP_FEATURES), config.step_dim, batch_first=True)
            width += config.step_dim
            self.sequence_dropout = nn.Dropout(config.sequence_dropout)
            # DKT's output: P(right on topic k) reads the state through topic k's own
            # vector, a direct (bilinear) path beside the MLP
            self.step_out = nn.Embedding(n_topics + 1, config.step_dim)
            nn.init.zeros_(self.step_out.weight)
        self.attention_dim = config.attention_dim if config.step_dim else 0
        if self.attention_dim:
            # SAKT's read (Pandey & Karypis 2019): the task's topic asks which recent
            # answers bear on it (topic k's query against each step's topic key, plus a
            # learned weight per position and one for the same topic), and reads their
            # right/wrong vectors. The GRU summarises the order; this finds the relevant step
            self.attention_query = nn.Embedding(n_topics + 1, config.attention_dim)
            self.attention_key = nn.Embedding(n_topics + 1, config.attention_dim)
            nn.init.normal_(self.attention_query.weight, std=0.05)
            nn.init.normal_(self.attention_key.weight, std=0.05)
            self.attention_position = nn.Parameter(torch.zeros(config.window))
            self.attention_same = nn.Parameter(torch.zeros(()))
            width += config.step_embedding
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
        self,
        user: torch.Tensor,
        topic: torch.Tensor,
        difficulty: torch.Tensor,
        features: torch.Tensor,
        recent_topic: torch.Tensor,
        recent: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [self.user(user), self.topic(topic), self.difficulty(difficulty), features]
        if self.step_dim:
            # padding steps are all-zero (present = 0); the GRU reads oldest -> newest,
            # so its last state has just seen the newest attempt
            present, credit = recent[..., 0:1], recent[..., 1:2]
            answered = credit * self.step_right(recent_topic) + (present - credit) * self.step_wrong(recent_topic)
            steps = torch.cat([answered, recent], dim=-1)
            _, last = self.sequence(steps)
            state = last[-1]
            parts.append(self.sequence_dropout(state))
            if self.attention_dim:
                parts.append(self._attend(topic, recent_topic, recent, answered))
        h = self.body(torch.cat(parts, dim=-1))
        logit = self.correct_head(h).squeeze(-1)
        if self.step_dim:
            logit = logit + (state * self.step_out(topic)).sum(-1)
        seconds = SECONDS_SCALE * nn.functional.softplus(self.time_head(h).squeeze(-1))
        return logit, seconds

    def _attend(
        self, topic: torch.Tensor, recent_topic: torch.Tensor, recent: torch.Tensor, answered: torch.Tensor
    ) -> torch.Tensor:
        """The attention-weighted mean of the steps' answer vectors (zero without steps)."""
        present, same = recent[..., 0], recent[..., 2]
        query = self.attention_query(topic).unsqueeze(-1)  # (batch, dim, 1)
        scores = (self.attention_key(recent_topic) @ query).squeeze(-1) / self.attention_dim**0.5
        scores = scores + self.attention_position + self.attention_same * same
        weights = torch.softmax(scores.masked_fill(present == 0, -1e4), dim=-1) * present
        return (weights.unsqueeze(-1) * answered).sum(dim=1)


def _tensors(rows: Rows) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(array) for name, array in feeds_of(rows).items()} | {
        "correct": torch.from_numpy(rows.correct),
        "log_seconds": torch.from_numpy(rows.log_seconds),
    }


def _forward(model: PredictorNet, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return model(*(batch[name] for name in INPUTS))


def _loss(model: PredictorNet, batch: dict[str, torch.Tensor], config: PredictorConfig) -> torch.Tensor:
    logit, seconds = _forward(model, batch)
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
        logit, seconds = _forward(model, {name: t[name][sl] for name in INPUTS})
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
        # a masked topic is unknown everywhere it occurs in the row, as a product topic
        # the model never saw would be (the same-topic flags still say where it recurs)
        mask_topic = torch.from_numpy(rng.random(n) < config.p_mask_topic)
        topic = t["topic"].clone()
        topic[mask_topic] = 0
        recent_topic = t["recent_topic"].clone()
        recent_topic[mask_topic.unsqueeze(-1) & (recent_topic == t["topic"].unsqueeze(-1))] = 0
        total = 0.0
        for i in range(0, n, config.batch_size):
            idx = order[i : i + config.batch_size]
            batch = {k: val[idx] for k, val in t.items()}
            batch["user"], batch["topic"], batch["recent_topic"] = user[idx], topic[idx], recent_topic[idx]
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
    window = model.window
    feeds = (
        torch.zeros(2, dtype=torch.int64),
        torch.zeros(2, dtype=torch.int64),
        torch.full((2,), 3, dtype=torch.int64),
        torch.zeros(2, N_FEATURES),
        torch.zeros(2, window, dtype=torch.int64),
        torch.zeros(2, window, len(RECENT_STEP_FEATURES)),
    )
    return _export_onnx(
        model,
        feeds,
        path,
        input_names=INPUTS,
        output_names=["logit", "seconds"],
        dynamic_axes={**{k: {0: "batch"} for k in INPUTS}, "logit": {0: "batch"}, "seconds": {0: "batch"}},
    )


def feeds_of(rows: Rows) -> dict[str, np.ndarray]:
    """The graph's inputs for these rows, by name."""
    return {name: getattr(rows, name) for name in INPUTS}
