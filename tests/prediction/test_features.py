"""The 11 history features and the recent-attempts sequence: SQL (serving) and
RunningHistory (training) must agree."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from shared.prediction.features import (
    FEATURE_NAMES,
    RECENT_STEP_FEATURES,
    RECENT_WINDOW,
    HistoryFeatures,
    RunningHistory,
    encode,
    encode_recent,
    history_features,
    recent_attempts,
)


def test_there_are_eleven_named_features() -> None:
    assert len(FEATURE_NAMES) == 11 == len(encode(HistoryFeatures()))


def test_no_history_encodes_to_neutral_values() -> None:
    x = encode(HistoryFeatures())
    rates = x[[0, 3, 6, 9]]
    assert np.allclose(rates, 0.5)  # Laplace: no evidence either way
    assert np.allclose(x[[1, 2, 4, 5, 7, 8, 10]], 0.0)


def test_encoding_stays_in_unit_range_for_extreme_histories() -> None:
    f = HistoryFeatures(1.0, 1e9, 10**9, 0.0, 0.0, 10**9, 1.0, 5.0, 1, 0.0, 1e9)
    x = encode(f)
    assert np.all((x >= 0) & (x <= 1))


def test_sql_features_match_the_training_computation(course: Any, complete_some: Any, topics: Any) -> None:
    rng = random.Random(3)
    outcomes = [
        (rng.choice(topics), rng.randint(1, 5), rng.random() < 0.6, rng.choice([None, rng.uniform(5, 300)]))
        for _ in range(23)
    ]
    complete_some(course, "alice", outcomes)
    complete_some(course, "bob", [(topics[0], 3, False, 12.0)])  # another user's attempt never counts
    running = RunningHistory()
    for topic, difficulty, correct, seconds in outcomes:
        running.add(topic, difficulty, float(correct), seconds)
    with course.connect() as conn:
        for topic in (*topics, "no-such-topic"):
            for difficulty in (1, 3, 5):
                expected = running.features(topic, difficulty)
                got = history_features(conn, "alice", topic, difficulty)
                for name in FEATURE_NAMES:
                    a, b = getattr(got, name), getattr(expected, name)
                    if b is None:
                        assert a is None, name
                    else:
                        assert a == pytest.approx(b, rel=1e-6), name


def test_recent_five_are_the_newest(course: Any, complete_some: Any, topics: Any) -> None:
    complete_some(course, "carol", [(topics[0], 2, True, 10.0)] * 5 + [(topics[1], 2, False, 100.0)] * 5)
    with course.connect() as conn:
        f = history_features(conn, "carol", topics[0], 2)
    assert f.recent5_success_rate == 0.0
    assert f.recent5_avg_seconds == pytest.approx(100.0)
    assert f.overall_success_rate == pytest.approx(0.5)
    assert (f.topic_count, f.topic_success_rate) == (5, 1.0)


def test_the_export_replays_to_the_same_features(course: Any, complete_some: Any, topics: Any, tmp_path: Any) -> None:
    """What the trainer reads back from the export gives the features serving computes."""
    import json

    from shared.prediction.export import export_attempts

    rng = random.Random(5)
    for user in ("alice", "bob"):
        complete_some(
            course,
            user,
            [(rng.choice(topics), rng.randint(1, 5), rng.random() < 0.5, rng.uniform(5, 60)) for _ in range(8)],
        )
    with course.connect() as conn:
        n = export_attempts(conn, tmp_path / "attempts.jsonl")
        served = history_features(conn, "alice", topics[1], 3)
    lines = [json.loads(line) for line in (tmp_path / "attempts.jsonl").read_text().splitlines()]
    assert n == len(lines) == 16
    running = RunningHistory()
    for a in lines:
        if a["user_id"] == "alice":
            running.add(a["topic_id"], a["difficulty"], a["credit"], a["time_seconds"])
    replayed = running.features(topics[1], 3)
    for name in FEATURE_NAMES:  # times are float4 columns: equal to float precision
        assert getattr(replayed, name) == pytest.approx(getattr(served, name), rel=1e-5), name


def test_the_recent_sequence_is_left_padded_newest_last() -> None:
    ids, steps = encode_recent([("a", 1.0), ("b", 0.0), ("a", 0.7)], "a", window=5)
    assert ids == [None, None, "a", "b", "a"]
    assert steps.shape == (5, len(RECENT_STEP_FEATURES)) and steps.dtype == np.float32
    assert steps[:2].tolist() == [[0.0, 0.0, 0.0]] * 2  # padding: not present
    assert np.allclose(steps[2:], [[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 0.7, 1.0]])


def test_the_recent_sequence_keeps_only_the_newest_window() -> None:
    history = [(f"t{i}", float(i % 2)) for i in range(RECENT_WINDOW + 4)]
    ids, steps = encode_recent(history, "t13")
    assert ids == [f"t{i}" for i in range(4, RECENT_WINDOW + 4)]
    assert steps[:, 0].tolist() == [1.0] * RECENT_WINDOW
    assert steps[-1].tolist() == [1.0, 1.0, 1.0]  # t13: odd = right, and the task's own topic
    assert encode_recent([], "x")[0] == [None] * RECENT_WINDOW


def test_running_history_keeps_the_window_it_is_given() -> None:
    """A network trained on a longer sequence must see that many steps in training too."""
    default, longer = RunningHistory(), RunningHistory(window=RECENT_WINDOW + 5)
    for i in range(RECENT_WINDOW + 8):
        default.add(f"t{i}", 3, 1.0, None)
        longer.add(f"t{i}", 3, 1.0, None)
    assert [t for t, _ in default.recent_attempts()] == [f"t{i}" for i in range(8, RECENT_WINDOW + 8)]
    assert [t for t, _ in longer.recent_attempts()] == [f"t{i}" for i in range(3, RECENT_WINDOW + 8)]


def test_the_recent_sequence_clips_credit_to_the_unit_range() -> None:
    _, steps = encode_recent([("a", 1.5), ("a", -0.2)], "b", window=2)
    assert steps[:, 1].tolist() == [1.0, 0.0]
    assert steps[:, 2].tolist() == [0.0, 0.0]


def test_sql_recent_attempts_match_the_training_computation(course: Any, complete_some: Any, topics: Any) -> None:
    rng = random.Random(11)
    outcomes = [(rng.choice(topics), rng.randint(1, 5), rng.random() < 0.5, 30.0) for _ in range(RECENT_WINDOW + 7)]
    complete_some(course, "alice", outcomes)
    complete_some(course, "bob", [(topics[0], 3, True, 12.0)])  # another user's attempt never counts
    running = RunningHistory()
    for topic, difficulty, correct, seconds in outcomes:
        running.add(topic, difficulty, float(correct), seconds)
    with course.connect() as conn:
        served = recent_attempts(conn, "alice")
        assert recent_attempts(conn, "nobody") == []
        assert recent_attempts(conn, "bob") == [(topics[0], 1.0)]
    assert served == running.recent_attempts()
    assert len(served) == RECENT_WINDOW
    assert served[-1] == (outcomes[-1][0], float(outcomes[-1][2]))
