"""Synthetic product data for the training job's tests and demo runs.

Students of hidden ability answer topics of hidden difficulty (a 1-parameter IRT
world): the outcome has signal the predictor's history features can learn, so a model
trained on it is measurably better than chance, and one trained on shuffled outcomes is
not. Ids look like the export's (pseudonymous users `u0001`, topics `topic-3`).
"""

from __future__ import annotations

import math
import random


def attempts(users: range, *, seed: int, per_user: int = 25, day: int = 1) -> list[dict]:
    """Rows of the `attempts` table for `users`, `per_user` attempts each, on 2026-11-`day`."""
    rng = random.Random(seed)
    topic_b = {f"topic-{k}": (k - 5) / 3 for k in range(10)}
    topics = sorted(topic_b)
    rows = []
    for u in users:
        ability = random.Random(f"ability:{u}").gauss(0, 1.2)
        for i in range(per_user):
            topic = rng.choice(topics)
            difficulty = max(1, min(5, round(3 + 1.5 * topic_b[topic])))
            p = 1 / (1 + math.exp(-(ability - topic_b[topic])))
            rows.append(
                {
                    "user_id": f"u{u:04d}",
                    "topic_id": topic,
                    "question_id": f"{topic}-q{rng.randrange(20)}",
                    "difficulty": difficulty,
                    "correct": float(rng.random() < p),
                    "seconds": round(rng.lognormvariate(math.log(40), 0.4), 1),
                    "completed_at": f"2026-11-{day:02d}T{i // 60:02d}:{i % 60:02d}:00+00:00",
                }
            )
    return rows


def shuffle_outcomes(rows: list[dict], seed: int = 0) -> list[dict]:
    """The same rows with `correct` shuffled across them: poisoned labels."""
    outcomes = [row["correct"] for row in rows]
    random.Random(seed).shuffle(outcomes)
    return [row | {"correct": value} for row, value in zip(rows, outcomes, strict=True)]
