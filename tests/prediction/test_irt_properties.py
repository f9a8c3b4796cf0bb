"""The IRT fallback is numerically safe on any history (issue 17, finding 1).

The fit used to diverge once about ten attempts existed: the prior of the parameters
that enter the logit with a minus sign (topic difficulty b, level offsets delta) had
the wrong sign and pushed them away from 0 geometrically, and the intercept had no
prior at all, so `p_correct` overflowed `math.exp` (a 500) or said exactly 1.0.
These properties hold for every history hypothesis can think of.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.prediction import irt
from shared.prediction.irt import MIN_ATTEMPTS, fit_irt

USERS = ("u0", "u1", "u2", "u3")
TOPICS = ("t0", "t1", "t2", "t3")

credits = st.one_of(
    st.sampled_from([0.0, 1.0]),
    st.floats(min_value=0.0, max_value=1.0),
    st.floats(allow_nan=True, allow_infinity=True),  # not data: dropped or clamped
)
times = st.one_of(
    st.none(),
    st.sampled_from([0.0, 1e-9, 0.5, 1.0, 86_400.0, 1e12, math.inf, math.nan]),
    st.floats(min_value=0.0, max_value=1e9),
)
rows = st.tuples(
    st.sampled_from(USERS), st.sampled_from(TOPICS), st.integers(min_value=-3, max_value=9), credits, times
)


def _assert_safe(fit: irt.IrtFit) -> None:
    values = [fit.mu, fit.nu, fit.sigma, *fit.theta.values(), *fit.b.values(), *fit.delta.values()]
    values += [*fit.tau.values(), *fit.beta.values(), *fit.gamma.values()]
    assert all(math.isfinite(v) for v in values)
    for user in (*fit.theta, "stranger"):
        for topic in (*fit.b, "new-topic"):
            for level in range(1, 6):
                p = fit.p_correct(user, topic, level)
                assert 0.0 < p < 1.0 and math.isfinite(p)
                seconds = fit.seconds(user, topic, level)
                assert irt.MIN_SECONDS <= seconds <= irt.MAX_SECONDS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rows, min_size=0, max_size=120))
def test_any_history_fits_finite_parameters_and_strict_probabilities(history: list) -> None:
    fit = fit_irt(history)
    usable = [r for r in history if math.isfinite(r[3])]
    if len(usable) < MIN_ATTEMPTS:
        assert fit is None
        return
    assert fit is not None
    _assert_safe(fit)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(min_value=MIN_ATTEMPTS, max_value=200),
    st.sampled_from([0.0, 1.0]),
    st.integers(min_value=1, max_value=5),
    st.sampled_from([None, 1e-6, 30.0, 1e9]),
)
def test_separable_histories_stay_bounded(n: int, credit: float, level: int, seconds: float | None) -> None:
    """All right (or all wrong), one user, one topic, one level: the unpenalised maximum
    is at infinity; the penalised one is finite and says 'likely', not 'certain'."""
    fit = fit_irt([("alice", "py-lists", level, credit, seconds)] * n)
    assert fit is not None
    _assert_safe(fit)
    p = fit.p_correct("bob", "py-lists", 2)
    assert (p > 0.5) if credit else (p < 0.5)
    assert abs(fit.mu) <= irt.BOUND and all(abs(v) <= irt.BOUND for v in fit.b.values())


@pytest.mark.parametrize(
    "history",
    [
        [("alice", "py-lists", 2, 1.0, 30.0)] * MIN_ATTEMPTS,  # the reported case: ten right answers
        [("alice", "py-lists", 2, 0.0, 30.0)] * MIN_ATTEMPTS,
        [(f"u{i % 7}", "only-topic", 1 + i % 5, float(i % 2), 1.0 + i) for i in range(60)],
        [("alice", f"t{i}", 3, 1.0, None) for i in range(40)],  # every topic seen once, all right
        [(f"u{i}", "t", 5, 0.0, 86_400.0) for i in range(40)],  # every user seen once, all wrong
    ],
)
def test_degenerate_histories(history: list) -> None:
    fit = fit_irt(history)
    assert fit is not None
    _assert_safe(fit)


def test_the_reported_75_attempt_refit_predicts_every_topic() -> None:
    """Issue 17: after a refit on 75 attempts 9 of 21 topics failed and the rest said 1.0."""
    rng = np.random.default_rng(17)
    history = [
        (f"u{rng.integers(5)}", f"t{rng.integers(21)}", int(rng.integers(1, 6)), float(rng.random() < 0.6), 30.0)
        for _ in range(75)
    ]
    fit = fit_irt(history)
    assert fit is not None
    ps = [fit.p_correct("new-student", f"t{t}", 2) for t in range(21)]
    assert all(0.05 < p < 0.95 for p in ps)
    assert len({round(p, 4) for p in ps}) > 1


def _penalised_gradient(fit: irt.IrtFit, history: list) -> np.ndarray:
    """d(log posterior)/d(every parameter) at the fit, correctness part."""
    grad: dict[tuple[str, object], float] = {}
    for user, topic, level, credit, _ in history:
        r = credit - fit.p_correct(user, topic, level)
        grad[("theta", user)] = grad.get(("theta", user), 0.0) + r
        grad[("b", topic)] = grad.get(("b", topic), 0.0) - r
        grad[("delta", level)] = grad.get(("delta", level), 0.0) - r
        grad[("mu", None)] = grad.get(("mu", None), 0.0) + r
    for user, v in fit.theta.items():
        grad[("theta", user)] -= irt.RIDGE_ABILITY * v
    for topic, v in fit.b.items():
        grad[("b", topic)] -= irt.RIDGE_ABILITY * v
    for level, v in fit.delta.items():
        grad[("delta", level)] = grad.get(("delta", level), 0.0) - irt.RIDGE_LEVEL * (
            v - irt.DIFFICULTY_LOGIT_SLOPE * (level - 3)
        )
    grad[("mu", None)] -= irt.RIDGE_INTERCEPT * fit.mu
    return np.array(list(grad.values()))


def test_the_fit_is_the_penalised_maximum() -> None:
    """Bounded steps and clamps only keep it safe: on ordinary data the answer is the
    MAP estimate itself (the gradient of the log posterior vanishes)."""
    rng = np.random.default_rng(3)
    ability = {f"u{i}": rng.normal() for i in range(30)}
    hardness = {f"t{j}": rng.normal() for j in range(8)}
    history = []
    for _ in range(1500):
        u, t, level = f"u{rng.integers(30)}", f"t{rng.integers(8)}", int(rng.integers(1, 6))
        p = 1 / (1 + math.exp(-(0.3 + ability[u] - hardness[t] - 0.4 * (level - 3))))
        history.append((u, t, level, float(rng.random() < p), 30.0))
    fit = fit_irt(history)
    assert fit is not None
    assert np.max(np.abs(_penalised_gradient(fit, history))) < 1e-3
