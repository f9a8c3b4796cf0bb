"""The answer when no model has anything to go on (no network model, too few attempts).

P(correct) is the BKT prediction from the student's mastery of the topic (the topic's
prior for a new student), shifted by the task's difficulty; seconds are the student's
recent average when known, else a base time scaled by difficulty. The same time
constants describe the prior of the IRT fallback and the simulated times the network's
bootstrap was trained on, so the three answers tell one story.
"""

from __future__ import annotations

import math

from shared.mastery.bkt import BKTParams, p_correct

VERSION = "default-1"
#: logit shift per difficulty level away from the middle (3): harder is less likely right
DIFFICULTY_LOGIT_SLOPE = 0.4
#: median seconds of a middle-difficulty task, and the log-time slope per level
BASE_SECONDS = 40.0
DIFFICULTY_LOG_TIME_SLOPE = 0.25


def difficulty_shift(difficulty: int) -> float:
    return -DIFFICULTY_LOGIT_SLOPE * (int(difficulty) - 3)


def base_seconds(difficulty: int) -> float:
    return BASE_SECONDS * math.exp(DIFFICULTY_LOG_TIME_SLOPE * (int(difficulty) - 3))


def _logit(p: float) -> float:
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def default_prediction(
    p_known: float, params: BKTParams, difficulty: int, recent_seconds: float | None = None
) -> tuple[float, float]:
    """(P(correct), expected seconds) without any fitted model."""
    z = _logit(p_correct(p_known, params)) + difficulty_shift(difficulty)
    p = 1.0 / (1.0 + math.exp(-z))
    seconds = base_seconds(difficulty)
    if recent_seconds is not None and recent_seconds > 0:
        seconds = recent_seconds  # the student's own pace beats a population constant
    return p, seconds
