"""What every trainer shares: seeding, batching, the epoch loop, metrics, checksums.

- `seed_everything`: same seed + same thread count -> same weights, run after run;
- `run_epochs`: train an epoch, validate, log, and (optionally) keep the epoch with the
  best validation value; the confusion and predictor trainers use it directly, and
  `fine_tune_classifier` (the MiniLM fine-tune of the intent and grader trainers) on top;
- `MiniLMClassifier`: all-MiniLM-L6-v2 + masked mean pooling + dropout + linear head,
  the network of both the intent classifier and the grader (cross-encoder on pairs);
- tokenization is the serving code's (`shared.models.onnx_model.load_tokenizer` /
  `tokenize`), so training sees exactly the token ids production will;
- metrics: `roc_auc`, `classification_metrics` (accuracy, macro/weighted F1);
- `file_sha256`, `folder_sha256`: the data snapshot digests recorded in manifests.

The retraining job (`model_export.retrain`) reuses the trainers, and so all of this.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from model_export.base_model import pretrained_dir
from shared.artifacts.manifest import sha256_file
from shared.models.onnx_model import load_tokenizer, tokenize

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_LENGTH = 128
#: the BERT feeds of every MiniLM graph, in the order the exported graphs take them
BERT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

__all__ = [
    "BERT_INPUTS",
    "MiniLMClassifier",
    "classification_metrics",
    "file_sha256",
    "fine_tune_classifier",
    "folder_sha256",
    "length_bucketed_batches",
    "load_training_tokenizer",
    "predict_logits",
    "roc_auc",
    "run_epochs",
    "seed_everything",
    "tokenize",
]


# --- seeding -------------------------------------------------------------------------


def seed_everything(seed: int, threads: int) -> None:
    """Seed python, numpy and torch; fix the thread count; deterministic torch kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


# --- checksums -------------------------------------------------------------------------

#: sha256 of a file, streamed (the artifact store's own helper)
file_sha256 = sha256_file


def folder_sha256(folder: Path, pattern: str = "*") -> str:
    """One digest over the files matching `pattern` (names and bytes), in name order."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob(pattern)):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


# --- metrics ---------------------------------------------------------------------------


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties; nan when one class is absent."""
    y = np.asarray(y) >= 0.5
    p = np.asarray(p)
    order = np.argsort(p, kind="mergesort")
    sorted_p = p[order]
    ranks = np.empty(len(p), dtype=np.float64)
    boundaries = np.flatnonzero(np.diff(sorted_p)) + 1
    starts = np.concatenate([[0], boundaries]).astype(np.int64)
    ends = np.concatenate([boundaries, [len(p)]]).astype(np.int64)
    ranks[order] = np.repeat((starts + ends - 1) / 2 + 1, ends - starts)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if not n_pos or not n_neg:
        return float("nan")
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(y: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1, support-weighted F1 and F1 per class.

    Macro-F1 averages the classes that occur in `y` or `pred`: a class absent from both
    has no defined F1 and would only drag the mean to 0 on a small evaluation set.
    """
    y, pred = np.asarray(y), np.asarray(pred)
    per_class: list[float | None] = []
    support: list[int] = []
    for c in range(len(labels)):
        tp = int(((pred == c) & (y == c)).sum())
        fp = int(((pred == c) & (y != c)).sum())
        fn = int(((pred != c) & (y == c)).sum())
        per_class.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None)
        support.append(int((y == c).sum()))
    present = [f for f in per_class if f is not None]
    total = max(1, sum(support))
    return {
        "n": len(y),
        "accuracy": round(float((pred == y).mean()) if len(y) else 0.0, 4),
        "macro_f1": round(float(np.mean(present)) if present else 0.0, 4),
        "weighted_f1": round(sum((f or 0.0) * s for f, s in zip(per_class, support, strict=True)) / total, 4),
        "f1_per_class": {labels[c]: round(f or 0.0, 4) for c, f in enumerate(per_class)},
    }


# --- batching and the epoch loop ---------------------------------------------------------


def length_bucketed_batches(
    items: Sequence[T], batch_size: int, rng: random.Random, length: Callable[[T], int]
) -> list[list[T]]:
    """Shuffle, sort within chunks of 50 batches by length, cut into batches, shuffle the
    batches: random order with little padding (and so little CPU time)."""
    shuffled = list(items)
    rng.shuffle(shuffled)
    chunk = batch_size * 50
    batches: list[list[T]] = []
    for i in range(0, len(shuffled), chunk):
        part = sorted(shuffled[i : i + chunk], key=length)
        batches += [part[j : j + batch_size] for j in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def run_epochs(
    model: nn.Module,
    epochs: int,
    train_epoch: Callable[[int], dict[str, Any]],
    validate: Callable[[], dict[str, Any]] | None = None,
    *,
    name: str,
    keep_best_by: str | None = None,
) -> list[dict]:
    """The epoch loop of every trainer.

    Each epoch: `train_epoch(epoch)` (model in train mode; returns e.g. the train loss),
    then `validate()` (model in eval mode; returns e.g. the validation loss), logged and
    recorded. With `keep_best_by` (a key of validate's dict, lower is better), the
    weights of the best epoch are restored at the end; without it the last epoch stays.
    """
    history: list[dict] = []
    best, best_state = math.inf, None
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        model.train()
        entry: dict[str, Any] = {"epoch": epoch, **train_epoch(epoch)}
        if validate is not None:
            model.eval()
            entry |= validate()
        entry["seconds"] = round(time.perf_counter() - started, 1)
        history.append(entry)
        log.info("%s: epoch %d/%d %s", name, epoch, epochs, entry)
        if keep_best_by is not None and entry[keep_best_by] < best:
            best, best_state = entry[keep_best_by], copy.deepcopy(model.state_dict())
    if keep_best_by is not None and best_state is not None:
        model.load_state_dict(best_state)
    return history


# --- the MiniLM classifier (intent, grader) --------------------------------------------


class MiniLMClassifier(nn.Module):
    """MiniLM encoder + masked mean pooling + dropout + linear head -> logits.

    Mean pooling over real tokens is the pooling the sentence encoder was trained with,
    so the head starts from meaningful sentence vectors. The intent classifier feeds it
    one text, the grader a (reference, answer) pair as one BERT sequence.
    """

    def __init__(
        self,
        n_labels: int,
        dropout: float = 0.1,
        layers: int | None = None,
        frozen_layers: int = 0,
        base: str = "minilm",
        extra_layers: int = 0,
    ) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel  # heavy imports, only where the model is built
        from transformers.utils import logging as hf_logging

        # `layers`: keep the first N of the pretrained transformer layers (None: all). A
        # shallower classifier reads a message in less time (issue 14); the weights of the
        # layers left out are not loaded, which transformers would warn about at length.
        # More layers than were pretrained would be random ones: refused.
        # `base`: the served MiniLM, or a larger model that only ever teaches
        # (base_model.BASES); the network around it is the same.
        self.base = base
        folder = str(pretrained_dir(base))
        if layers is None:
            self.encoder = AutoModel.from_pretrained(folder)
        else:
            depth = AutoConfig.from_pretrained(folder).num_hidden_layers
            if not 1 <= layers <= depth:
                raise ValueError(f"layers must be 1 to {depth} (the pretrained depth), not {layers}")
            verbosity = hf_logging.get_verbosity()
            hf_logging.set_verbosity_error()
            try:
                self.encoder = AutoModel.from_pretrained(folder, num_hidden_layers=layers)
            finally:
                hf_logging.set_verbosity(verbosity)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.encoder.config.hidden_size, n_labels)
        # BERT reads segment ids; MPNet has none and refuses the argument
        self._segments = "token_type_ids" in inspect.signature(self.encoder.forward).parameters
        self._freeze(frozen_layers)
        self._extend(extra_layers)

    def _extend(self, extra_layers: int) -> None:
        """Append `extra_layers` trainable copies of the last kept layer.

        With every kept layer frozen, the network is the exact sentence encoder followed by
        a small classifier of its own: one encoder pass could serve retrieval, and the
        intent would cost only these layers (issue 14's one-pass lever; measured in
        docs/intent_confusion.md, not adopted). Copies of the last layer start from
        weights that already read its output's scale, where random ones would not.
        """
        if extra_layers < 0:
            raise ValueError(f"extra_layers must be 0 or more, not {extra_layers}")
        layers = self.encoder.encoder.layer
        for _ in range(extra_layers):
            layers.append(copy.deepcopy(layers[-1]).requires_grad_(True))
        # BERT sizes its per-layer head mask by the configured depth
        self.encoder.config.num_hidden_layers = len(layers)

    def _freeze(self, frozen_layers: int) -> None:
        """Keep the embeddings and the first `frozen_layers` layers as pretrained.

        They stay in evaluation mode (no dropout) even while the rest trains, so they
        compute exactly what the sentence encoder computes: the trunk that one shared pass
        could serve to both the encoder and this classifier (issue 14's lever, measured in
        docs/intent_confusion.md).
        """
        layers = self.encoder.encoder.layer
        if not 0 <= frozen_layers <= len(layers):
            raise ValueError(f"frozen_layers must be 0 to {len(layers)} (the layers kept), not {frozen_layers}")
        self._frozen = [self.encoder.embeddings, *layers[:frozen_layers]] if frozen_layers else []
        for module in self._frozen:
            module.requires_grad_(False)

    def train(self, mode: bool = True) -> MiniLMClassifier:
        super().train(mode)
        for module in self._frozen:  # attention dropout is functional: only eval mode turns it off
            module.eval()
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        segments = {"token_type_ids": token_type_ids} if self._segments else {}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **segments).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return self.head(self.dropout(pooled))


def load_training_tokenizer(max_length: int = MAX_LENGTH, base: str = "minilm") -> Tokenizer:
    """A base model's tokenizer.json loaded exactly as serving loads the MiniLM one
    (dynamic padding)."""
    return load_tokenizer(pretrained_dir(base) / "tokenizer.json", max_length=max_length)


def _torch_feeds(feeds: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in feeds.items()}


@torch.no_grad()
def predict_logits(
    model: MiniLMClassifier,
    tokenizer: Tokenizer,
    items: Sequence[str | tuple[str, str]],
    batch_size: int = 64,
    *,
    by_length: bool = False,
) -> np.ndarray:
    """Logits for texts (or text pairs) in their order; `by_length` batches similar
    lengths together (less padding) and puts the rows back in order."""
    model.eval()
    n_labels = model.head.out_features
    order = list(range(len(items)))
    if by_length:
        order.sort(key=lambda i: sum(map(len, items[i])) if isinstance(items[i], tuple) else len(items[i]))
    logits = np.zeros((len(items), n_labels), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        logits[idx] = model(**_torch_feeds(tokenize(tokenizer, [items[i] for i in idx]))).numpy()
    return logits


def fine_tune_classifier(
    model: MiniLMClassifier,
    tokenizer: Tokenizer,
    train_items: Sequence[T],
    *,
    inputs: Callable[[T], str | tuple[str, str]],
    target: Callable[[T], int | list[float]],  # a class index, or a distribution over the classes
    config: Any,
    loss_fn: nn.Module,
    name: str,
    validate: Callable[[], dict[str, Any]] | None = None,
    log_every: int = 100,
    weight: Callable[[T], float] | None = None,
) -> tuple[list[dict], float]:
    """Fine-tune the whole network (frozen parameters excepted); return (history, seconds).

    AdamW with a larger rate for the freshly initialised head than for the pretrained
    encoder, linear warm-up then linear decay, gradient clipping at 1, length-bucketed
    batches. `config` needs epochs, batch_size, lr_encoder, lr_head, weight_decay,
    warmup_frac and seed. The last epoch is kept (validation is reported, not selected
    on: temperature calibration on the same split comes after).

    `weight` (per item) makes the loss a weighted mean: `loss_fn` must then be built with
    `reduction="none"`. The retraining job weighs silver (LLM) labels below human ones.
    """
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": config.lr_encoder},
            {"params": model.head.parameters(), "lr": config.lr_head},
        ],
        weight_decay=config.weight_decay,
    )
    total = math.ceil(len(train_items) / config.batch_size) * config.epochs
    warmup = max(1, int(total * config.warmup_frac))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))),
    )
    rng = random.Random(config.seed)
    started = time.perf_counter()
    step = 0

    def length(item: T) -> int:
        x = inputs(item)
        return sum(map(len, x)) if isinstance(x, tuple) else len(x)

    def train_epoch(_epoch: int) -> dict:
        nonlocal step
        batches = length_bucketed_batches(train_items, config.batch_size, rng, length)
        running = 0.0
        for batch in batches:
            feeds = tokenize(tokenizer, [inputs(x) for x in batch])
            y = torch.tensor([target(x) for x in batch])
            loss = loss_fn(model(**_torch_feeds(feeds)), y)
            if weight is not None:
                w = torch.tensor([weight(x) for x in batch], dtype=loss.dtype)
                loss = (loss * w).sum() / w.sum().clamp_min(1e-12)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            running += loss.item()
            step += 1
            if step % log_every == 0:
                log.info(
                    "%s: step %d/%d loss %.4f (%.0fs)", name, step, total, loss.item(), time.perf_counter() - started
                )
        return {"train_loss": round(running / max(1, len(batches)), 4)}

    history = run_epochs(model, config.epochs, train_epoch, validate, name=name)
    return history, time.perf_counter() - started
