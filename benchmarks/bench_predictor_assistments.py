"""Benchmark: the predictor on ASSISTments 2009 vs BKT and PFA baselines, one split, one run.

    .venv-train/bin/python benchmarks/bench_predictor_assistments.py [--seed 42] [--dkt] [--json out.json]

20% of students are held out (unseen users: user index 0, as a new product user). The
network is trained by the SAME code the build uses (`model_export.train_predictor`:
`prepare`, `fit`, `export_onnx`) on the other 80% (of which 10% of students are kept for
early stopping), then exported and quantized to INT8 as the build does, and the served
INT8 graph is scored too. Baselines, fitted on the same 80% and scored on the same 20%:
- BKT: per-skill Bayesian Knowledge Tracing, the four parameters fitted by EM
  (Baum-Welch), predictions by forward filtering over each student's own history;
- PFA: Performance Factors Analysis (Pavlik et al., 2009), a per-skill logistic model
  logit P = beta_k + gamma_k * prior successes + rho_k * prior failures on skill k.
- DKT (`--dkt`): the published model of Piech et al. (2015), an LSTM of 200 units over
  each student's whole sequence of (skill, outcome), in pieces of 200 steps, trained on
  the network's training students with its early-stopping students: the reference the
  0.86 of the literature comes from, measured on this split.
Reported: AUC and accuracy (threshold 0.5) over every held-out attempt.

Caveat, also in docs/prediction.md: the DKT release of this data set expands an attempt
on a multi-skill problem into consecutive rows with the same outcome, which flatters any
model that reads the previous answer (recent-5 here, the hidden state in DKT); baselines
run on the same rows, which is why they are in the same table.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_export.predictor_data import Rows, Sequence, assistments_path, read_dkt
from model_export.train_predictor import (
    PredictorConfig,
    correctness_metrics,
    export_onnx,
    feeds_of,
    fit,
    predict,
    prepare,
)

log = logging.getLogger("bench_predictor")


# --- BKT (EM per skill) ---------------------------------------------------------------
def _skill_sequences(sequences: list[Sequence]) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = defaultdict(list)
    for seq in sequences:
        per: dict[str, list[float]] = defaultdict(list)
        for t, c in zip(seq.topics, seq.correct, strict=True):
            per[t].append(c)
        for t, obs in per.items():
            out[t].append(np.array(obs, dtype=np.float64))
    return out


def _pad(obs: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    length = min(max(len(o) for o in obs), max_len)
    x = np.zeros((len(obs), length))
    mask = np.zeros((len(obs), length), dtype=bool)
    for i, o in enumerate(obs):
        n = min(len(o), length)
        x[i, :n] = o[:n]
        mask[i, :n] = True
    return x, mask


def fit_bkt_skill(obs: list[np.ndarray], iterations: int = 30, max_len: int = 200) -> tuple[float, float, float, float]:
    """EM for (p_init, p_learn, p_guess, p_slip) over one skill's student sequences."""
    x, mask = _pad(obs, max_len)
    p_init, p_learn, p_guess, p_slip = 0.4, 0.15, 0.2, 0.1
    n, length = x.shape
    for _ in range(iterations):
        # emission likelihoods: [:, :, 0] = not known, [:, :, 1] = known
        e1 = np.where(x == 1, 1 - p_slip, p_slip)
        e0 = np.where(x == 1, p_guess, 1 - p_guess)
        e0 = np.where(mask, e0, 1.0)
        e1 = np.where(mask, e1, 1.0)
        alpha = np.zeros((n, length, 2))
        scale = np.zeros((n, length))
        prior = np.stack([np.full(n, 1 - p_init), np.full(n, p_init)], axis=1)
        for t in range(length):
            a = prior * np.stack([e0[:, t], e1[:, t]], axis=1)
            s = a.sum(axis=1)
            alpha[:, t] = a / s[:, None]
            scale[:, t] = s
            known = alpha[:, t, 1] + alpha[:, t, 0] * p_learn
            step = np.stack([1 - known, known], axis=1)
            prior = np.where(mask[:, t : t + 1], step, alpha[:, t])
        beta = np.ones((n, length, 2))
        for t in range(length - 2, -1, -1):
            nxt = beta[:, t + 1] * np.stack([e0[:, t + 1], e1[:, t + 1]], axis=1)
            # transition: from 0 -> 0 (1-T), 0 -> 1 (T); from 1 -> 1
            b0 = (1 - p_learn) * nxt[:, 0] + p_learn * nxt[:, 1]
            b1 = nxt[:, 1]
            b = np.stack([b0, b1], axis=1) / scale[:, t + 1][:, None]
            beta[:, t] = np.where(mask[:, t + 1 : t + 2], b, beta[:, t + 1])
        gamma = alpha * beta
        gamma /= gamma.sum(axis=2, keepdims=True)
        # expected transitions 0 -> 1
        num_learn = den_learn = 0.0
        for t in range(length - 1):
            valid = mask[:, t + 1]
            nxt = beta[:, t + 1] * np.stack([e0[:, t + 1], e1[:, t + 1]], axis=1) / scale[:, t + 1][:, None]
            xi01 = alpha[:, t, 0] * p_learn * nxt[:, 1]
            num_learn += xi01[valid].sum()
            den_learn += gamma[:, t, 0][valid].sum()
        g0, g1 = gamma[..., 0][mask], gamma[..., 1][mask]
        obs_flat = x[mask]
        p_init = float(np.clip(gamma[:, 0, 1].mean(), 1e-3, 1 - 1e-3))
        p_learn = float(np.clip(num_learn / max(den_learn, 1e-9), 1e-3, 0.5))
        p_guess = float(np.clip((g0 * obs_flat).sum() / max(g0.sum(), 1e-9), 1e-3, 0.4))
        p_slip = float(np.clip((g1 * (1 - obs_flat)).sum() / max(g1.sum(), 1e-9), 1e-3, 0.4))
    return p_init, p_learn, p_guess, p_slip


def bkt_predict(sequences: list[Sequence], params: dict[str, tuple[float, float, float, float]]) -> np.ndarray:
    default = (0.4, 0.15, 0.2, 0.1)
    out = []
    for seq in sequences:
        state: dict[str, float] = {}
        for t, c in zip(seq.topics, seq.correct, strict=True):
            p_init, p_learn, p_guess, p_slip = params.get(t, default)
            known = state.get(t, p_init)
            out.append(known * (1 - p_slip) + (1 - known) * p_guess)
            if c >= 0.5:
                post = known * (1 - p_slip) / (known * (1 - p_slip) + (1 - known) * p_guess)
            else:
                post = known * p_slip / (known * p_slip + (1 - known) * (1 - p_guess))
            state[t] = post + (1 - post) * p_learn
    return np.array(out)


# --- PFA (per-skill logistic regression on prior successes / failures) -----------------
def _pfa_rows(sequences: list[Sequence]) -> tuple[list[str], np.ndarray, np.ndarray]:
    skills, xs, ys = [], [], []
    for seq in sequences:
        succ: dict[str, int] = defaultdict(int)
        fail: dict[str, int] = defaultdict(int)
        for t, c in zip(seq.topics, seq.correct, strict=True):
            skills.append(t)
            xs.append((1.0, succ[t], fail[t]))
            ys.append(c)
            if c >= 0.5:
                succ[t] += 1
            else:
                fail[t] += 1
    return skills, np.array(xs), np.array(ys)


def fit_pfa(sequences: list[Sequence], ridge: float = 1e-2, iterations: int = 25) -> dict[str, np.ndarray]:
    skills, x, y = _pfa_rows(sequences)
    by_skill: dict[str, list[int]] = defaultdict(list)
    for i, k in enumerate(skills):
        by_skill[k].append(i)
    weights = {}
    for k, idx in by_skill.items():
        xk, yk = x[idx], y[idx]
        w = np.zeros(3)
        for _ in range(iterations):  # Newton-Raphson with a small ridge
            p = 1 / (1 + np.exp(-(xk @ w)))
            grad = xk.T @ (yk - p) - ridge * w
            hess = (xk * (p * (1 - p))[:, None]).T @ xk + ridge * np.eye(3)
            w = w + np.linalg.solve(hess, grad)
        weights[k] = w
    return weights


def pfa_predict(sequences: list[Sequence], weights: dict[str, np.ndarray]) -> np.ndarray:
    skills, x, _ = _pfa_rows(sequences)
    zero = np.zeros(3)
    z = np.array([x[i] @ weights.get(k, zero) for i, k in enumerate(skills)])
    return 1 / (1 + np.exp(-z))


# --- DKT as published (Piech et al. 2015): an LSTM over the whole answer sequence ------
DKT_PIECE = 200  # steps per training and scoring piece (the pykt convention for long sequences)


def _dkt_pieces(sequences: list[Sequence], skills: dict[str, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(input tokens, skill of each step, outcome) per piece of at most DKT_PIECE steps.

    Step t reads the token of step t-1 (skill and outcome, one-hot as an embedding row;
    0 = the start of the piece) and predicts step t's outcome on step t's skill, so every
    attempt is predicted, the first ones from the start state. Skills not seen in
    training share row 0, as the network's unknown topic does."""
    pieces = []
    for seq in sequences:
        skill = np.array([skills.get(t, 0) for t in seq.topics], dtype=np.int64)
        outcome = np.array(seq.correct, dtype=np.float32)
        for start in range(0, len(skill), DKT_PIECE):
            k, y = skill[start : start + DKT_PIECE], outcome[start : start + DKT_PIECE]
            tokens = np.concatenate([[0], 1 + 2 * k[:-1] + (y[:-1] >= 0.5)]).astype(np.int64)
            pieces.append((tokens, k, y))
    return pieces


def _dkt_batch(pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
    import torch

    length = max(len(p[0]) for p in pieces)
    tokens = torch.zeros(len(pieces), length, dtype=torch.int64)
    skill = torch.zeros(len(pieces), length, dtype=torch.int64)
    outcome = torch.zeros(len(pieces), length)
    mask = torch.zeros(len(pieces), length, dtype=torch.bool)
    for i, (x, k, y) in enumerate(pieces):
        tokens[i, : len(x)], skill[i, : len(k)] = torch.from_numpy(x), torch.from_numpy(k)
        outcome[i, : len(y)], mask[i, : len(y)] = torch.from_numpy(y), True
    return tokens, skill, outcome, mask


def fit_dkt(train_seqs: list[Sequence], val_seqs: list[Sequence], hidden: int = 200, epochs: int = 12, seed: int = 42):
    """DKT: token embedding -> LSTM(hidden) -> dropout -> one logit per skill, BCE on the
    step's own skill; Adam, batches of 32 pieces, the epoch with the lowest validation
    loss kept. Returns (model, skills)."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    skills = {t: i + 1 for i, t in enumerate(sorted({t for s in train_seqs for t in s.topics}))}

    class DKT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(2 * (len(skills) + 1) + 1, hidden)
            self.lstm = nn.LSTM(hidden, hidden, batch_first=True)
            self.drop = nn.Dropout(0.2)
            self.out = nn.Linear(hidden, len(skills) + 1)

        def forward(self, tokens, skill):
            state, _ = self.lstm(self.embed(tokens))
            return self.out(self.drop(state)).gather(-1, skill.unsqueeze(-1)).squeeze(-1)

    model = DKT()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train, val = _dkt_pieces(train_seqs, skills), _dkt_batch(_dkt_pieces(val_seqs, skills))
    rng = np.random.default_rng(seed)
    best, best_state = float("inf"), None
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train))
        for i in range(0, len(order), 32):
            tokens, skill, outcome, mask = _dkt_batch([train[j] for j in order[i : i + 32]])
            loss = nn.functional.binary_cross_entropy_with_logits(model(tokens, skill)[mask], outcome[mask])
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        model.eval()
        with torch.no_grad():
            tokens, skill, outcome, mask = val
            val_loss = float(nn.functional.binary_cross_entropy_with_logits(model(tokens, skill)[mask], outcome[mask]))
        log.info("dkt: epoch %d/%d val_loss %.4f", epoch + 1, epochs, val_loss)
        if val_loss < best:
            best, best_state = val_loss, {k: v.clone() for k, v in model.state_dict().items()}
    assert best_state is not None
    model.load_state_dict(best_state)
    return model, skills


def dkt_predict(model, skills: dict[str, int], sequences: list[Sequence]) -> np.ndarray:
    """P(correct) for every attempt, in the order of the sequences (the rows' order)."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for seq in sequences:
            for tokens, skill, _ in _dkt_pieces([seq], skills):
                logit = model(torch.from_numpy(tokens)[None], torch.from_numpy(skill)[None])[0]
                out.append(torch.sigmoid(logit).numpy())
    return np.concatenate(out)


def single_row_latency(int8: Path, fp32: Path, rows: Rows, n: int = 2000) -> dict:
    """One prediction at a time, as the prediction function makes them: onnxruntime on
    one thread, one row per run (the serving session's options), wall-clock ms."""
    import onnxruntime as ort

    out = {}
    pick = np.random.default_rng(0).choice(len(rows), size=min(n, len(rows)), replace=False)
    for name, path in (("int8", int8), ("fp32", fp32)):
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        times = []
        for i in pick:
            feeds = {k: v[i : i + 1] for k, v in feeds_of(rows).items()}
            started = time.perf_counter()
            session.run(["logit", "seconds"], feeds)
            times.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "p50_ms": round(float(np.percentile(times, 50)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3),
        }
    out["size_bytes"] = {"int8": int8.stat().st_size, "fp32": fp32.stat().st_size}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=PredictorConfig.epochs)
    parser.add_argument("--window", type=int, default=PredictorConfig.window, help="steps of the recent sequence")
    parser.add_argument("--step-dim", type=int, default=PredictorConfig.step_dim, help="GRU state (0: no sequence)")
    parser.add_argument(
        "--attention-dim",
        type=int,
        default=PredictorConfig.attention_dim,
        help="topic attention over the steps (0: none)",
    )
    parser.add_argument(
        "--dkt", action="store_true", help="also fit DKT as published (an LSTM of 200 over whole sequences)"
    )
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    path = assistments_path()
    sequences = read_dkt(path)
    results: dict = {"data": str(path), "seed": args.seed}

    started = time.perf_counter()
    config = PredictorConfig(
        seed=args.seed, epochs=args.epochs, window=args.window, step_dim=args.step_dim, attention_dim=args.attention_dim
    )
    results["config"] = {
        "window": config.window,
        "step_dim": config.step_dim,
        "attention_dim": config.attention_dim,
        "epochs": config.epochs,
    }
    prepared = prepare(sequences, seed=args.seed, val_fraction=0.08, test_fraction=0.2, window=config.window)
    results["split"] = prepared.counts
    # the baselines fit on the same 80% (train + early-stopping students), score the same 20%
    train_seqs = prepared.parts["train"] + prepared.parts["val"]
    test_seqs = prepared.parts["test"]
    assert prepared.test is not None
    y = prepared.test.correct

    model, history = fit(prepared.train, prepared.val, len(prepared.users), len(prepared.topics), config)
    p_net, _ = predict(model, prepared.test)
    results["network_fp32"] = correctness_metrics(y, p_net) | {
        "train_seconds": round(time.perf_counter() - started, 1),
        "epochs": history,
    }

    with tempfile.TemporaryDirectory() as tmp:
        import onnxruntime as ort

        from model_export.quantize import quantize

        fp32 = export_onnx(model, Path(tmp) / "predictor.onnx")
        int8 = quantize(fp32, Path(tmp) / "predictor.int8.onnx", per_channel=True)
        session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
        logit = session.run(["logit"], feeds_of(prepared.test))[0]
        p_int8 = 1 / (1 + np.exp(-logit))
        results["network_int8_onnx"] = correctness_metrics(y, p_int8) | {
            "max_abs_diff_vs_fp32": round(float(np.abs(p_int8 - p_net).max()), 4)
        }
        results["latency"] = single_row_latency(int8, fp32, prepared.test)

    started = time.perf_counter()
    bkt_params = {k: fit_bkt_skill(v) for k, v in _skill_sequences(train_seqs).items()}
    results["bkt"] = correctness_metrics(y, bkt_predict(test_seqs, bkt_params)) | {
        "fit_seconds": round(time.perf_counter() - started, 1)
    }
    started = time.perf_counter()
    pfa = fit_pfa(train_seqs)
    results["pfa"] = correctness_metrics(y, pfa_predict(test_seqs, pfa)) | {
        "fit_seconds": round(time.perf_counter() - started, 1)
    }

    if args.dkt:
        started = time.perf_counter()
        dkt, dkt_skills = fit_dkt(prepared.parts["train"], prepared.parts["val"], seed=args.seed)
        results["dkt"] = correctness_metrics(y, dkt_predict(dkt, dkt_skills, test_seqs)) | {
            "fit_seconds": round(time.perf_counter() - started, 1)
        }

    print()
    print(f"ASSISTments 2009 (DKT format), {len(test_seqs)} held-out students, {len(y)} attempts")
    print(f"{'model':<22}{'AUC':>8}{'accuracy':>10}{'log loss':>10}")
    for name in ("network_fp32", "network_int8_onnx", "bkt", "pfa", "dkt"):
        if name not in results:
            continue
        r = results[name]
        print(f"{name:<22}{r['auc']:>8.4f}{r['accuracy']:>10.4f}{r['log_loss']:>10.4f}")
    lat = results["latency"]
    print(
        f"network training {results['network_fp32']['train_seconds']} s; INT8 vs FP32 max |dP| "
        f"{results['network_int8_onnx']['max_abs_diff_vs_fp32']}; one row, one thread: INT8 p50 "
        f"{lat['int8']['p50_ms']} ms / p95 {lat['int8']['p95_ms']} ms, FP32 p50 {lat['fp32']['p50_ms']} ms / "
        f"p95 {lat['fp32']['p95_ms']} ms; sizes INT8 {lat['size_bytes']['int8']} B, FP32 {lat['size_bytes']['fp32']} B"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
