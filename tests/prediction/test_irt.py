"""The IRT-style fallback: recovers who is able and what is hard from simulated data."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from shared.prediction.irt import MIN_ATTEMPTS, IrtCache, fit_irt


def _simulate(seed: int = 0, n_users: int = 40, n_topics: int = 6, per_user: int = 30) -> tuple[list, dict, dict, dict]:
    rng = np.random.default_rng(seed)
    theta = {f"u{i}": float(rng.normal(0, 1)) for i in range(n_users)}
    b = {f"t{j}": float(rng.normal(0, 1)) for j in range(n_topics)}
    tau = {u: float(rng.normal(0, 0.4)) for u in theta}
    rows = []
    for u in theta:
        for _ in range(per_user):
            t = f"t{rng.integers(n_topics)}"
            level = int(rng.integers(1, 6))
            p = 1 / (1 + math.exp(-(0.5 + theta[u] - b[t] - 0.4 * (level - 3))))
            seconds = math.exp(math.log(40) + 0.25 * (level - 3) - tau[u] + rng.normal(0, 0.3))
            rows.append((u, t, level, float(rng.random() < p), seconds))
    return rows, theta, b, tau


def test_fit_recovers_abilities_difficulties_and_speeds() -> None:
    rows, theta, b, tau = _simulate()
    fit = fit_irt(rows)
    assert fit is not None
    users = sorted(theta)
    assert np.corrcoef([theta[u] for u in users], [fit.theta[u] for u in users])[0, 1] > 0.7
    topics = sorted(b)
    assert np.corrcoef([b[t] for t in topics], [fit.b[t] for t in topics])[0, 1] > 0.8
    assert np.corrcoef([tau[u] for u in users], [fit.tau[u] for u in users])[0, 1] > 0.8
    # harder levels are predicted less likely right and slower, for the same user and topic
    ps = [fit.p_correct("u1", "t1", level) for level in range(1, 6)]
    secs = [fit.seconds("u1", "t1", level) for level in range(1, 6)]
    assert ps == sorted(ps, reverse=True) and secs == sorted(secs)


def test_unknown_user_and_topic_get_the_population_answer() -> None:
    rows, *_ = _simulate(seed=1)
    fit = fit_irt(rows)
    assert fit is not None and not fit.knows_user("nobody") and not fit.knows_topic("nothing")
    p = fit.p_correct("nobody", "nothing", 3)
    assert p == 1 / (1 + math.exp(-(fit.mu - fit.delta[3])))
    assert 0.05 < p < 0.95
    assert 10 < fit.seconds("nobody", "nothing", 3) < 200


def test_too_few_attempts_fit_nothing_and_untimed_attempts_fit_no_time_model() -> None:
    rows, *_ = _simulate(n_users=2, per_user=3)
    assert fit_irt(rows[: MIN_ATTEMPTS - 1]) is None
    untimed = [(u, t, lv, c, None) for u, t, lv, c, _ in _simulate()[0]]
    fit = fit_irt(untimed)
    assert fit is not None and fit.n_timed == 0 and fit.tau == {}


def test_the_version_names_the_fit() -> None:
    rows, *_ = _simulate(seed=2)
    a, b = fit_irt(rows), fit_irt(rows[:-1])
    assert a is not None and b is not None
    assert a.version == fit_irt(rows).version  # deterministic
    assert a.version != b.version and a.version.startswith(f"irt-{len(rows)}-")


def test_cache_refits_only_after_its_ttl_and_when_attempts_changed(course: Any, complete_some: Any) -> None:
    now = [0.0]
    cache = IrtCache(ttl_s=60, clock=lambda: now[0])
    with course.connect() as conn:
        assert cache.get(conn) is None
    complete_some(course, "alice", [("py-basics", 2, i % 3 != 0, 30.0 + i) for i in range(MIN_ATTEMPTS)])
    with course.connect() as conn:
        first = cache.get(conn)  # no fit yet: re-counted at once, not a TTL later
        assert first is not None and first.n_attempts == MIN_ATTEMPTS
    complete_some(course, "bob", [("py-loops", 3, True, 20.0)])
    with course.connect() as conn:
        now[0] = 59.0
        assert cache.get(conn) is first  # within the TTL the fit stands
        now[0] = 61.0
        second = cache.get(conn)
        now[0] = 200.0
        assert cache.get(conn) is second  # nothing changed since: no refit
    assert second is not None and second is not first and second.knows_user("bob")
