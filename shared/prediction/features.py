"""The 11 history features of seed 003, defined once for serving (SQL) and training (Python).

For a user about to do a task of topic T at difficulty D, from their completed attempts
before now:

    overall:     success rate, average seconds, task count
    topic T:     success rate, average seconds, task count
    difficulty D: success rate, average seconds, task count
    last 5:      success rate, average seconds

"Success" is the attempt's credit in [0, 1]: score/10 when graded, else correct as 0/1.
Averages of seconds are over attempts whose time is known; a rate or average with no
attempt behind it is None (JSON null) in what the API shows.

`history_features` computes them with one SQL statement; `RunningHistory` computes the
same numbers incrementally over a sequence (training on ASSISTments, and the test that
proves both agree). `encode` turns them into the network's input vector, the one place
that choice is made, so training and serving cannot drift apart.

Beside these aggregates the network reads the sequence itself: the last RECENT_WINDOW
(10) completed attempts, oldest first, each as its topic id and (`encode_recent`)
[present, credit, same topic as the task about to be done]. Aggregates cannot say
*which* topics came just before and in what order; the network's small recurrent
encoder can (`recent_attempts` reads them for serving, `RunningHistory.recent_attempts`
for training).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the training venv has no database packages; it imports this module too
    import sqlalchemy as sa

FEATURE_NAMES: tuple[str, ...] = (
    "overall_success_rate",
    "overall_avg_seconds",
    "overall_count",
    "topic_success_rate",
    "topic_avg_seconds",
    "topic_count",
    "difficulty_success_rate",
    "difficulty_avg_seconds",
    "difficulty_count",
    "recent5_success_rate",
    "recent5_avg_seconds",
)
N_FEATURES = len(FEATURE_NAMES)
RECENT = 5
#: how many of the newest completed attempts the network reads as a sequence
RECENT_WINDOW = 10
#: per step of that sequence, in `encode_recent`'s order
RECENT_STEP_FEATURES: tuple[str, ...] = ("present", "credit", "same_topic")
#: encoding constants: times are log-scaled up to an hour, counts up to 1000 tasks
MAX_SECONDS = 3600.0
MAX_COUNT = 1000.0


@dataclass(frozen=True)
class HistoryFeatures:
    overall_success_rate: float | None = None
    overall_avg_seconds: float | None = None
    overall_count: int = 0
    topic_success_rate: float | None = None
    topic_avg_seconds: float | None = None
    topic_count: int = 0
    difficulty_success_rate: float | None = None
    difficulty_avg_seconds: float | None = None
    difficulty_count: int = 0
    recent5_success_rate: float | None = None
    recent5_avg_seconds: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @property
    def recent_count(self) -> int:
        return min(self.overall_count, RECENT)


assert tuple(f.name for f in fields(HistoryFeatures)) == FEATURE_NAMES


def _rate(rate: float | None, n: int) -> float:
    """Laplace-smoothed success rate: (successes + 1) / (n + 2); 0.5 with no evidence."""
    successes = (rate or 0.0) * n
    return (successes + 1.0) / (n + 2.0)


def _seconds(avg: float | None) -> float:
    if avg is None:
        return 0.0
    return math.log1p(min(max(avg, 0.0), MAX_SECONDS)) / math.log1p(MAX_SECONDS)


def _count(n: int) -> float:
    return math.log1p(min(max(n, 0), MAX_COUNT)) / math.log1p(MAX_COUNT)


def encode(f: HistoryFeatures) -> np.ndarray:
    """The network's (11,) float32 input: smoothed rates, log-scaled times and counts,
    each in [0, 1]. A missing time encodes as 0, which the matching count tells apart."""
    return np.array(
        [
            _rate(f.overall_success_rate, f.overall_count),
            _seconds(f.overall_avg_seconds),
            _count(f.overall_count),
            _rate(f.topic_success_rate, f.topic_count),
            _seconds(f.topic_avg_seconds),
            _count(f.topic_count),
            _rate(f.difficulty_success_rate, f.difficulty_count),
            _seconds(f.difficulty_avg_seconds),
            _count(f.difficulty_count),
            _rate(f.recent5_success_rate, f.recent_count),
            _seconds(f.recent5_avg_seconds),
        ],
        dtype=np.float32,
    )


def encode_recent(
    recent: Sequence[tuple[str, float]], topic: object, window: int = RECENT_WINDOW
) -> tuple[list[str | None], np.ndarray]:
    """The network's sequence input from the newest attempts (oldest first, as
    (topic id, credit)): the topic ids of the last `window` steps, left-padded with None
    so the newest is always last, and their (window, 3) float32 step features
    [present, credit, same topic as `topic`]. The same-topic flag is computed from the
    raw ids, so it holds for topics the model has no embedding row for."""
    steps = list(recent)[-window:] if window else []
    pad = window - len(steps)
    topics: list[str | None] = [None] * pad + [t for t, _ in steps]
    values = np.zeros((window, len(RECENT_STEP_FEATURES)), dtype=np.float32)
    for i, (t, credit) in enumerate(steps, start=pad):
        values[i] = (1.0, min(max(float(credit), 0.0), 1.0), 1.0 if t == topic else 0.0)
    return topics, values


_RECENT_SQL = """
    SELECT topic_id, COALESCE(score / 10.0, CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS credit
      FROM task_attempts
     WHERE user_id = :user_id AND status = 'completed'
     ORDER BY completed_at DESC, id DESC
     LIMIT :window
"""


def recent_attempts(conn: sa.Connection, user_id: str, window: int = RECENT_WINDOW) -> list[tuple[str, float]]:
    """The user's newest `window` completed attempts as (topic id, credit), oldest first."""
    import sqlalchemy as sa

    rows = conn.execute(sa.text(_RECENT_SQL), {"user_id": user_id, "window": int(window)}).all()
    return [(str(r.topic_id), float(r.credit)) for r in reversed(rows)]


_SQL = """
    WITH done AS (
        SELECT topic_id, difficulty, completed_at, time_seconds,
               COALESCE(score / 10.0, CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS credit
          FROM task_attempts
         WHERE user_id = :user_id AND status = 'completed'
    ), recent AS (
        SELECT credit, time_seconds FROM done ORDER BY completed_at DESC LIMIT 5
    )
    SELECT count(*)                                                AS overall_count,
           avg(credit)                                             AS overall_success_rate,
           avg(time_seconds)                                       AS overall_avg_seconds,
           count(*) FILTER (WHERE topic_id = :topic_id)            AS topic_count,
           avg(credit) FILTER (WHERE topic_id = :topic_id)         AS topic_success_rate,
           avg(time_seconds) FILTER (WHERE topic_id = :topic_id)   AS topic_avg_seconds,
           count(*) FILTER (WHERE difficulty = :difficulty)        AS difficulty_count,
           avg(credit) FILTER (WHERE difficulty = :difficulty)     AS difficulty_success_rate,
           avg(time_seconds) FILTER (WHERE difficulty = :difficulty) AS difficulty_avg_seconds,
           (SELECT avg(credit) FROM recent)                        AS recent5_success_rate,
           (SELECT avg(time_seconds) FROM recent)                  AS recent5_avg_seconds
      FROM done
"""


def history_features(conn: sa.Connection, user_id: str, topic_id: str, difficulty: int) -> HistoryFeatures:
    """The 11 features from the user's completed attempts (index task_attempts_user_idx)."""
    import sqlalchemy as sa

    row = (
        conn.execute(sa.text(_SQL), {"user_id": user_id, "topic_id": topic_id, "difficulty": int(difficulty)})
        .mappings()
        .one()
    )
    values: dict[str, float | int | None] = {}
    for name in FEATURE_NAMES:
        value = row[name]
        if name.endswith("_count"):
            values[name] = int(value or 0)
        else:
            values[name] = None if value is None else float(value)
    return HistoryFeatures(**values)  # type: ignore[arg-type]


class _Tally:
    __slots__ = ("credit", "n", "time_n", "time_sum")

    def __init__(self) -> None:
        self.n = 0
        self.credit = 0.0
        self.time_n = 0
        self.time_sum = 0.0

    def add(self, credit: float, seconds: float | None) -> None:
        self.n += 1
        self.credit += credit
        if seconds is not None:
            self.time_n += 1
            self.time_sum += seconds

    def rate(self) -> float | None:
        return self.credit / self.n if self.n else None

    def avg_seconds(self) -> float | None:
        return self.time_sum / self.time_n if self.time_n else None


class RunningHistory:
    """One user's features, updated one completed attempt at a time (oldest first).

    `features(topic, difficulty)` gives what `history_features` would return before the
    next task; `add(...)` records that task's outcome. `window` is how many of the newest
    attempts `recent_attempts` keeps (the network's sequence length).
    """

    def __init__(self, window: int = RECENT_WINDOW) -> None:
        self.overall = _Tally()
        self.by_topic: dict[object, _Tally] = {}
        self.by_difficulty: dict[int, _Tally] = {}
        self.recent: deque[tuple[float, float | None]] = deque(maxlen=RECENT)
        self.window: deque[tuple[str, float]] = deque(maxlen=window)

    def recent_attempts(self) -> list[tuple[str, float]]:
        """What `recent_attempts` would read before the next task: (topic, credit), oldest first."""
        return list(self.window)

    def features(self, topic: object, difficulty: int) -> HistoryFeatures:
        empty = _Tally()
        t = self.by_topic.get(topic, empty)
        d = self.by_difficulty.get(int(difficulty), empty)
        recent_times = [s for _, s in self.recent if s is not None]
        return HistoryFeatures(
            overall_success_rate=self.overall.rate(),
            overall_avg_seconds=self.overall.avg_seconds(),
            overall_count=self.overall.n,
            topic_success_rate=t.rate(),
            topic_avg_seconds=t.avg_seconds(),
            topic_count=t.n,
            difficulty_success_rate=d.rate(),
            difficulty_avg_seconds=d.avg_seconds(),
            difficulty_count=d.n,
            recent5_success_rate=(sum(c for c, _ in self.recent) / len(self.recent)) if self.recent else None,
            recent5_avg_seconds=(sum(recent_times) / len(recent_times)) if recent_times else None,
        )

    def add(self, topic: object, difficulty: int, credit: float, seconds: float | None) -> None:
        self.overall.add(credit, seconds)
        self.by_topic.setdefault(topic, _Tally()).add(credit, seconds)
        self.by_difficulty.setdefault(int(difficulty), _Tally()).add(credit, seconds)
        self.recent.append((credit, seconds))
        self.window.append((str(topic), credit))
