"""Training rows for the predictor: attempt sequences -> (ids, 11 features, outcome, time).

The product's own attempts table is empty on a fresh install, so v1 bootstraps from
ASSISTments 2009-2010 skill-builder in the DKT format (`../shared/data/assistments2009/
builder_train.csv`: per student, a count line, a skill-id line and a 0/1 line). What
transfers to the product is how the history features and the 'unknown' user/topic
rows predict; the ASSISTments student and skill ids themselves never occur there.

The DKT release has no difficulty and no times. Both are filled in here, and said so:
- difficulty 1-5 of a skill = the quintile of its success rate among *training*
  students (1 = easiest), so held-out students never inform it;
- seconds are SIMULATED from a log-normal response-time model in the spirit of LNIRT
  (van der Linden, 2006): log t = log 40 + skill time intensity + 0.25 (difficulty - 3)
  - student speed + 0.3 if wrong + noise (sd 0.5). The time head therefore learns how
  the time features relate to the next time under that model, not real ASSISTments
  times; the manifest and docs/prediction.md say so.
Features are computed by `shared.prediction.features.RunningHistory`, the serving code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_export.base_model import data_root
from shared.prediction.defaults import BASE_SECONDS, DIFFICULTY_LOG_TIME_SLOPE
from shared.prediction.features import (
    N_FEATURES,
    RECENT_STEP_FEATURES,
    RECENT_WINDOW,
    RunningHistory,
    encode,
    encode_recent,
)

REPO = Path(__file__).resolve().parent.parent
SUBDIR = "assistments2009"
FILE = "builder_train.csv"

#: the simulated time model (see the module docstring)
TIME_BASE_S = BASE_SECONDS  # the same constants as the serving defaults
TIME_SKILL_SD = 0.3
TIME_STUDENT_SD = 0.3
TIME_DIFFICULTY_SLOPE = DIFFICULTY_LOG_TIME_SLOPE
TIME_WRONG_PENALTY = 0.3
TIME_NOISE_SD = 0.5


class PredictorDataMissing(FileNotFoundError):
    """No training data (a fresh clone has no ../shared/data and no product attempts).

    `skip_model` tells the build to publish the version without the predictor; serving
    then answers with the IRT fallback or the defaults.
    """

    skip_model = True


def assistments_path(root: Path | None = None) -> Path:
    path = (root or data_root()) / SUBDIR / FILE
    if not path.is_file():
        raise PredictorDataMissing(f"ASSISTments 2009 DKT file not found at {path}")
    return path


@dataclass
class Sequence:
    """One student's attempts, oldest first."""

    user: str
    topics: list[str]
    correct: list[float]
    difficulty: list[int] | None = None
    seconds: list[float | None] | None = None


def read_dkt(path: Path) -> list[Sequence]:
    """Parse the three-lines-per-student DKT file; ids are prefixed ('a:') so they can
    never collide with product ids."""
    lines = path.read_text(encoding="utf-8").splitlines()
    sequences: list[Sequence] = []
    for i in range(0, len(lines) - 2, 3):
        if not lines[i].strip():
            continue
        n = int(lines[i].strip().rstrip(","))
        skills = [s for s in lines[i + 1].strip().split(",") if s != ""][:n]
        answers = [a for a in lines[i + 2].strip().split(",") if a != ""][:n]
        if len(skills) != n or len(answers) != n:
            raise ValueError(f"{path.name}: student at line {i + 1} has a ragged record")
        sequences.append(Sequence(f"a:{len(sequences)}", [f"a:{s}" for s in skills], [float(a) for a in answers]))
    return sequences


def split_students(sequences: list[Sequence], val_fraction: float, seed: int) -> tuple[list[Sequence], list[Sequence]]:
    """A deterministic split by student (never by attempt)."""
    order = np.random.default_rng(seed).permutation(len(sequences))
    n_val = round(len(sequences) * val_fraction)
    val_idx = set(order[:n_val].tolist())
    train = [s for i, s in enumerate(sequences) if i not in val_idx]
    val = [s for i, s in enumerate(sequences) if i in val_idx]
    return train, val


def skill_difficulty(train: list[Sequence]) -> dict[str, int]:
    """Difficulty 1-5 per skill: quintile of its training success rate (1 = easiest)."""
    totals: dict[str, list[float]] = {}
    for seq in train:
        for topic, c in zip(seq.topics, seq.correct, strict=True):
            t = totals.setdefault(topic, [0.0, 0.0])
            t[0] += c
            t[1] += 1
    rates = {k: (v[0] + 1) / (v[1] + 2) for k, v in totals.items()}
    cuts = np.quantile(list(rates.values()), [0.2, 0.4, 0.6, 0.8]) if rates else []
    # high success rate = easy = 1
    return {k: int(5 - np.searchsorted(cuts, r, side="right")) for k, r in rates.items()}


def add_difficulty_and_times(sequences: list[Sequence], difficulty: dict[str, int], seed: int) -> None:
    """Fill in difficulty (3 for a skill unseen in training) and simulated seconds, for
    the sequences that lack them (ASSISTments); product sequences keep their own."""
    rng = np.random.default_rng(seed + 1)
    skills = sorted({t for s in sequences if s.seconds is None for t in s.topics})
    # per-skill intensity from a hash-seeded stream, so it does not depend on the split
    intensity = {
        k: float(
            np.random.default_rng(int(hashlib.sha256(f"{seed}:{k}".encode()).hexdigest()[:8], 16)).normal(
                0, TIME_SKILL_SD
            )
        )
        for k in skills
    }
    for seq in sequences:
        if seq.difficulty is None:
            seq.difficulty = [difficulty.get(t, 3) for t in seq.topics]
        if seq.seconds is not None:
            continue
        speed = rng.normal(0, TIME_STUDENT_SD)
        noise = rng.normal(0, TIME_NOISE_SD, size=len(seq.topics))
        seq.seconds = [
            float(
                np.exp(
                    np.log(TIME_BASE_S)
                    + intensity[t]
                    + TIME_DIFFICULTY_SLOPE * (d - 3)
                    - speed
                    + TIME_WRONG_PENALTY * (1.0 - c)
                    + e
                )
            )
            for t, d, c, e in zip(seq.topics, seq.difficulty, seq.correct, noise, strict=True)
        ]


def read_attempts_jsonl(path: Path) -> list[Sequence]:
    """Product attempts exported by `python -m shared.prediction.export` (one completed
    attempt a line, ordered by user and completion time): real difficulty and times."""
    import json

    by_user: dict[str, Sequence] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            a = json.loads(line)
            seq = by_user.setdefault(a["user_id"], Sequence(a["user_id"], [], [], [], []))
            seq.topics.append(a["topic_id"])
            seq.correct.append(float(a["credit"]))
            assert seq.difficulty is not None and seq.seconds is not None
            seq.difficulty.append(int(a["difficulty"]))
            seq.seconds.append(None if a.get("time_seconds") is None else float(a["time_seconds"]))
    return list(by_user.values())


@dataclass
class Rows:
    """Flat training rows; index 0 of users/topics is the 'unknown' row."""

    user: np.ndarray  # int64 (n,)
    topic: np.ndarray  # int64 (n,)
    difficulty: np.ndarray  # int64 (n,) 1-5
    features: np.ndarray  # float32 (n, 11)
    correct: np.ndarray  # float32 (n,) credit in [0, 1]
    log_seconds: np.ndarray  # float32 (n,), NaN where the time is unknown
    student: np.ndarray  # int64 (n,) position of the sequence (for per-student metrics)
    recent_topic: np.ndarray  # int64 (n, window) topic rows of the last attempts (0: padding/unknown)
    recent: np.ndarray  # float32 (n, window, 3) `encode_recent` step features

    def __len__(self) -> int:
        return len(self.correct)

    def take(self, idx: np.ndarray) -> Rows:
        return Rows(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def vocabulary(ids: list[str]) -> dict[str, int]:
    """id -> index from 1 (0 is 'unknown'), sorted so the mapping is deterministic."""
    return {k: i + 1 for i, k in enumerate(sorted(set(ids)))}


def to_rows(
    sequences: list[Sequence], users: dict[str, int], topics: dict[str, int], window: int = RECENT_WINDOW
) -> Rows:
    """Features and the recent sequence before each attempt, computed by the serving
    code's RunningHistory and encode_recent."""
    n = sum(len(s.topics) for s in sequences)
    user = np.zeros(n, dtype=np.int64)
    topic = np.zeros(n, dtype=np.int64)
    diff = np.zeros(n, dtype=np.int64)
    feats = np.zeros((n, N_FEATURES), dtype=np.float32)
    correct = np.zeros(n, dtype=np.float32)
    log_s = np.full(n, np.nan, dtype=np.float32)
    student = np.zeros(n, dtype=np.int64)
    recent_topic = np.zeros((n, window), dtype=np.int64)
    recent = np.zeros((n, window, len(RECENT_STEP_FEATURES)), dtype=np.float32)
    row = 0
    for si, seq in enumerate(sequences):
        history = RunningHistory(window)
        uid = users.get(seq.user, 0)
        difficulties = seq.difficulty or [3] * len(seq.topics)
        seconds = seq.seconds or [None] * len(seq.topics)
        for t, d, c, s in zip(seq.topics, difficulties, seq.correct, seconds, strict=True):
            user[row] = uid
            topic[row] = topics.get(t, 0)
            diff[row] = d
            feats[row] = encode(history.features(t, d))
            step_topics, recent[row] = encode_recent(history.recent_attempts(), t, window)
            recent_topic[row] = [topics.get(k, 0) if k is not None else 0 for k in step_topics]
            correct[row] = c
            if s is not None:
                log_s[row] = np.log(max(s, 1e-3))
            student[row] = si
            history.add(t, d, c, s)
            row += 1
    return Rows(user, topic, diff, feats, correct, log_s, student, recent_topic, recent)
