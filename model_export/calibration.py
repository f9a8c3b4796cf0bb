"""Temperature scaling and calibration metrics for every classifier (numpy only).

Used by the intent and grader trainers (temperature) and the confusion trainer (ECE).
The product acts on the intent classifier's confidence (below 0.40 it asks the student to
rephrase, below 0.60 it queues the query for human review), so the softmax must mean what
it says. A fine-tuned transformer is typically over-confident; temperature scaling
(Guo et al., 2017) divides the logits by one scalar T fitted to minimise the negative
log-likelihood on a held-out validation split. It cannot change the arg-max, only the
confidence, so accuracy is untouched.
"""

from __future__ import annotations

import itertools

import numpy as np

T_MIN = 0.05
T_MAX = 20.0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels."""
    p = softmax(logits, temperature)[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(p, 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T in [T_MIN, T_MAX] minimising validation NLL.

    NLL is unimodal in log T for a fixed set of logits, so a coarse log-spaced grid
    followed by golden-section refinement finds it without an optimiser dependency. The
    bounds matter when validation is perfectly classified: NLL then keeps falling as
    T -> 0, and the bound stops the fit from declaring certainty it has no evidence for.
    """
    grid = np.exp(np.linspace(np.log(T_MIN), np.log(T_MAX), 60))
    losses = [nll(logits, labels, t) for t in grid]
    i = int(np.argmin(losses))
    lo = np.log(grid[max(i - 1, 0)])
    hi = np.log(grid[min(i + 1, len(grid) - 1)])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a = hi - ratio * (hi - lo)
        b = lo + ratio * (hi - lo)
        if nll(logits, labels, float(np.exp(a))) < nll(logits, labels, float(np.exp(b))):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width
    confidence bins weighted by their size."""
    conf = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def threshold_report(
    probs: np.ndarray, labels: np.ndarray, thresholds: tuple[float, ...] = (0.40, 0.60)
) -> dict[str, dict[str, float]]:
    """For each product threshold: the share of queries at or above it and their accuracy
    (what the product would act on without asking the student or a human)."""
    conf = probs.max(axis=-1)
    correct = probs.argmax(axis=-1) == labels
    out: dict[str, dict[str, float]] = {}
    for t in thresholds:
        kept = conf >= t
        out[f"{t:.2f}"] = {
            "coverage": round(float(kept.mean()), 4),
            "accuracy_above": round(float(correct[kept].mean()), 4) if kept.any() else 0.0,
        }
    return out
