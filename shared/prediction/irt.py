"""The statistical fallback: an IRT-style model fitted from the attempts table with numpy.

Correctness, a Rasch model with a difficulty-level term (1PL + facets):

    logit P(correct) = mu + theta_user - b_topic - delta_level

Response time, log-normal in the spirit of LNIRT (van der Linden, 2006):

    log seconds = nu + beta_topic + gamma_level - tau_user + e,   e ~ N(0, sigma^2)

Both are fitted by penalised maximum likelihood (MAP with Gaussian priors): theta, b,
tau, beta shrink to 0, delta/gamma to the default difficulty ramp of
`shared.prediction.defaults`, and the intercepts mu/nu get a weak prior too, so a user
or topic with two attempts gets a modest estimate and one with none gets exactly the
population answer. Block-coordinate Newton steps (one diagonal Newton step per
parameter block, alternating; each block's Hessian is diagonal, so the step is exact
per coordinate) converge in a few dozen passes over at most `MAX_ATTEMPTS` rows: tens
of milliseconds, no scipy.

Numerical safety, on any history (few attempts, all right, all wrong, one topic,
absurd times). Every term of the objective carries its prior, including the intercept,
so the penalised likelihood has a finite maximum even on separable data (all correct:
the unpenalised maximum is at infinity). Each Newton step is the prior's gradient plus
the data's, over the data's curvature plus the prior precision (never a tiny
denominator), it is bounded by `MAX_STEP` logits, and every parameter is clamped to
`BOUND` logits around its prior mean; `p_correct` clamps the summed logit to `MAX_LOGIT`
and `seconds` the log time to [`MIN_SECONDS`, `MAX_SECONDS`]. Rows that cannot be data
(a non-finite credit or time, a level outside 1-5) are dropped or clamped first. The
fit is therefore finite and P(correct) is strictly inside (0, 1) whatever the input;
tests/prediction/test_irt_properties.py checks it with hypothesis.

Serving refits lazily: `IrtCache.get` returns the cached fit until its TTL has passed
and the number of completed attempts has changed. The answer's version names the fit
(`irt-<attempts>-<hash>`) so a logged prediction says exactly which fit made it.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared.prediction.defaults import (
    BASE_SECONDS,
    DIFFICULTY_LOG_TIME_SLOPE,
    DIFFICULTY_LOGIT_SLOPE,
)

#: fewer completed attempts than this and the fallback does not fit (defaults answer)
MIN_ATTEMPTS = 10
#: the newest attempts the fit reads
MAX_ATTEMPTS = 50_000
#: prior precisions (1 / variance) of the random effects
RIDGE_ABILITY = 1.0
RIDGE_LEVEL = 4.0
RIDGE_TIME = 4.0
#: prior precision of the intercepts (mean logit around 0, mean log time around the
#: default): weak, sd ~3, so data moves them freely but separable data cannot send
#: them to infinity
RIDGE_INTERCEPT = 0.1
#: most passes over the data; the fit stops earlier once no step exceeds TOLERANCE
ITERATIONS = 100
TOLERANCE = 1e-6
#: largest change of any parameter in one Newton step (logits / log seconds)
MAX_STEP = 1.0
#: every parameter stays within this many logits (or log seconds) of its prior mean
BOUND = 6.0
#: the summed logit of a prediction is clamped here: P in [0.00034, 0.99966]
MAX_LOGIT = 8.0
#: times are read and predicted within [1 second, 1 day]
MIN_SECONDS = 1.0
MAX_SECONDS = 86_400.0

Attempt = tuple[str, str, int, float, float | None]  # user, topic, level, credit, seconds
#: the difficulty levels (index 0 of the level arrays is unused)
LEVELS = slice(1, 6)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def sigmoid(z: float) -> float:
    """Logistic function of a logit clamped to +-MAX_LOGIT: strictly inside (0, 1)."""
    z = min(max(float(z), -MAX_LOGIT), MAX_LOGIT)
    return 1.0 / (1.0 + math.exp(-z))


@dataclass
class IrtFit:
    version: str
    n_attempts: int
    mu: float
    theta: dict[str, float]
    b: dict[str, float]
    delta: dict[int, float]
    nu: float
    tau: dict[str, float] = field(default_factory=dict)
    beta: dict[str, float] = field(default_factory=dict)
    gamma: dict[int, float] = field(default_factory=dict)
    sigma: float = 0.6
    n_timed: int = 0

    def knows_user(self, user_id: str) -> bool:
        return user_id in self.theta

    def knows_topic(self, topic_id: str) -> bool:
        return topic_id in self.b

    def logit(self, user_id: str, topic_id: str, level: int) -> float:
        return (
            self.mu
            + self.theta.get(user_id, 0.0)
            - self.b.get(topic_id, 0.0)
            - self.delta.get(int(level), DIFFICULTY_LOGIT_SLOPE * (int(level) - 3))
        )

    def p_correct(self, user_id: str, topic_id: str, level: int) -> float:
        return sigmoid(self.logit(user_id, topic_id, level))

    def seconds(self, user_id: str, topic_id: str, level: int) -> float:
        """Median seconds (exp of the log-normal mean), within [MIN_SECONDS, MAX_SECONDS]."""
        z = (
            self.nu
            + self.beta.get(topic_id, 0.0)
            + self.gamma.get(int(level), DIFFICULTY_LOG_TIME_SLOPE * (int(level) - 3))
            - self.tau.get(user_id, 0.0)
        )
        return float(math.exp(min(max(z, math.log(MIN_SECONDS)), math.log(MAX_SECONDS))))


def _index(values: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    keys = sorted(set(values), key=str)
    lookup = {k: i for i, k in enumerate(keys)}
    return keys, np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))


def _levels(attempts: Sequence[Attempt]) -> np.ndarray:
    return np.clip(np.array([int(a[2]) for a in attempts], dtype=np.int64), 1, 5)


def _newton(
    param: np.ndarray,
    idx: np.ndarray,
    sign: float,
    r: np.ndarray,
    w: np.ndarray | float,
    prior: np.ndarray | float,
    precision: float,
) -> float:
    """One penalised Newton step, in place, for a block whose entries each touch their
    own rows: `z = ... + sign * param[idx]`, residual r = y - prediction, curvature w.

    The log posterior's gradient is sign * sum(r) - precision * (param - prior) and its
    curvature sum(w) + precision (>= precision > 0), so the step is finite; it is then
    bounded by MAX_STEP and the parameter clamped to prior +- BOUND. Returns the
    largest step taken (the convergence test)."""
    n = len(param)
    weights = np.bincount(idx, minlength=n) * float(w) if np.isscalar(w) else np.bincount(idx, w, n)  # type: ignore[arg-type]
    grad = sign * np.bincount(idx, r, n) - precision * (param - prior)
    step = np.clip(grad / (weights + precision), -MAX_STEP, MAX_STEP)
    new = np.clip(param + step, prior - BOUND, prior + BOUND)
    taken = float(np.max(np.abs(new - param))) if n else 0.0
    param[:] = new
    return taken


def _recentre(
    intercept: np.ndarray,
    intercept_prior: float,
    intercept_precision: float,
    block: np.ndarray,
    sign: float,
    prior: np.ndarray | float,
    precision: float,
    used: slice = slice(None),
) -> float:
    """Move the intercept by c and `block[used]` by -sign * c: every prediction stays the
    same (z holds intercept + sign * block), only the priors change, and c is their exact
    optimum. Without it the intercept and a block's mean trade against each other at the
    rate of the prior's pull (1/(rows per topic) per pass): hundreds of passes."""
    part = block[used]
    mean_prior = prior[used] if isinstance(prior, np.ndarray) else prior
    c = (
        sign * precision * float(np.sum(part - mean_prior)) - intercept_precision * (intercept[0] - intercept_prior)
    ) / (intercept_precision + precision * len(part))
    c = float(np.clip(c, -MAX_STEP, MAX_STEP))
    intercept[0] = np.clip(intercept[0] + c, intercept_prior - BOUND, intercept_prior + BOUND)
    block[used] = np.clip(part - sign * c, mean_prior - BOUND, mean_prior + BOUND)
    return abs(c)


def _usable(attempts: Sequence[Attempt]) -> list[Attempt]:
    """Rows that can be data: a finite credit (clamped to [0, 1] later)."""
    return [a for a in attempts if a[3] is not None and math.isfinite(float(a[3]))]


def fit_irt(attempts: Sequence[Attempt], *, iterations: int = ITERATIONS) -> IrtFit | None:
    """Fit both parts from (user, topic, level, credit in [0,1], seconds or None) rows."""
    attempts = _usable(attempts)
    if len(attempts) < MIN_ATTEMPTS:
        return None
    users, u = _index([a[0] for a in attempts])
    topics, t = _index([a[1] for a in attempts])
    levels = _levels(attempts)
    y = np.clip(np.array([float(a[3]) for a in attempts]), 0.0, 1.0)
    theta, b = np.zeros(len(users)), np.zeros(len(topics))
    level_prior = DIFFICULTY_LOGIT_SLOPE * (np.arange(6) - 3)
    delta = level_prior.copy()
    mu = np.zeros(1)
    rows = np.zeros(len(y), dtype=np.int64)

    def residual() -> tuple[np.ndarray, np.ndarray]:
        p = _sigmoid(mu[0] + theta[u] - b[t] - delta[levels])
        return y - p, p * (1 - p)

    for _ in range(iterations):
        moved = _newton(theta, u, +1.0, *residual(), 0.0, RIDGE_ABILITY)
        moved = max(moved, _newton(b, t, -1.0, *residual(), 0.0, RIDGE_ABILITY))
        moved = max(moved, _newton(delta, levels, -1.0, *residual(), level_prior, RIDGE_LEVEL))
        moved = max(moved, _newton(mu, rows, +1.0, *residual(), 0.0, RIDGE_INTERCEPT))
        moved = max(moved, _recentre(mu, 0.0, RIDGE_INTERCEPT, theta, +1.0, 0.0, RIDGE_ABILITY))
        moved = max(moved, _recentre(mu, 0.0, RIDGE_INTERCEPT, b, -1.0, 0.0, RIDGE_ABILITY))
        moved = max(moved, _recentre(mu, 0.0, RIDGE_INTERCEPT, delta, -1.0, level_prior, RIDGE_LEVEL, LEVELS))
        if moved < TOLERANCE:
            break

    fit = IrtFit(
        version="",
        n_attempts=len(attempts),
        mu=float(mu[0]),
        theta={k: float(v) for k, v in zip(users, theta, strict=True)},
        b={k: float(v) for k, v in zip(topics, b, strict=True)},
        delta={lv: float(delta[lv]) for lv in range(1, 6)},
        nu=math.log(BASE_SECONDS),
    )
    _fit_times(fit, attempts, iterations)
    digest = hashlib.sha256(
        repr((round(fit.mu, 6), sorted(fit.b.items()), sorted(fit.theta.items()), round(fit.nu, 6))).encode()
    ).hexdigest()[:8]
    fit.version = f"irt-{len(attempts)}-{digest}"
    return fit


def _fit_times(fit: IrtFit, attempts: Sequence[Attempt], iterations: int) -> None:
    """The log-normal time model: a ridge regression on log seconds (Gauss-Seidel by
    block, each block step exact), times clamped to [MIN_SECONDS, MAX_SECONDS]."""
    timed = [a for a in attempts if a[4] is not None and math.isfinite(float(a[4])) and a[4] > 0]
    fit.n_timed = len(timed)
    if len(timed) < MIN_ATTEMPTS:
        fit.n_timed = 0
        return
    users, u = _index([a[0] for a in timed])
    topics, t = _index([a[1] for a in timed])
    levels = _levels(timed)
    log_s = np.log(np.clip(np.array([float(a[4] or MIN_SECONDS) for a in timed]), MIN_SECONDS, MAX_SECONDS))
    tau, beta = np.zeros(len(users)), np.zeros(len(topics))
    gamma_prior = DIFFICULTY_LOG_TIME_SLOPE * (np.arange(6) - 3)
    gamma = gamma_prior.copy()
    nu_prior = math.log(BASE_SECONDS)
    nu = np.array([nu_prior])
    rows = np.zeros(len(log_s), dtype=np.int64)

    def residual() -> np.ndarray:
        return log_s - (nu[0] + beta[t] + gamma[levels] - tau[u])

    # Squared error: curvature 1 per row, so the Newton step of a block is its exact
    # ridge solution given the others.
    for _ in range(iterations):
        moved = _newton(tau, u, -1.0, residual(), 1.0, 0.0, RIDGE_TIME)
        moved = max(moved, _newton(beta, t, +1.0, residual(), 1.0, 0.0, RIDGE_TIME))
        moved = max(moved, _newton(gamma, levels, +1.0, residual(), 1.0, gamma_prior, RIDGE_TIME))
        moved = max(moved, _newton(nu, rows, +1.0, residual(), 1.0, nu_prior, RIDGE_INTERCEPT))
        moved = max(moved, _recentre(nu, nu_prior, RIDGE_INTERCEPT, tau, -1.0, 0.0, RIDGE_TIME))
        moved = max(moved, _recentre(nu, nu_prior, RIDGE_INTERCEPT, beta, +1.0, 0.0, RIDGE_TIME))
        moved = max(moved, _recentre(nu, nu_prior, RIDGE_INTERCEPT, gamma, +1.0, gamma_prior, RIDGE_TIME, LEVELS))
        if moved < TOLERANCE:
            break
    r = residual()
    fit.nu = float(nu[0])
    fit.tau = {k: float(v) for k, v in zip(users, tau, strict=True)}
    fit.beta = {k: float(v) for k, v in zip(topics, beta, strict=True)}
    fit.gamma = {lv: float(gamma[lv]) for lv in range(1, 6)}
    fit.sigma = float(np.sqrt(np.mean(r**2)))


def load_attempts(conn: Any, limit: int = MAX_ATTEMPTS) -> list[Attempt]:
    """The newest completed attempts, as fit_irt rows."""
    import sqlalchemy as sa

    rows = conn.execute(
        sa.text(
            """SELECT user_id, topic_id, difficulty,
                      COALESCE(score / 10.0, CASE WHEN correct THEN 1.0 ELSE 0.0 END) AS credit,
                      time_seconds
                 FROM task_attempts
                WHERE status = 'completed'
                ORDER BY completed_at DESC
                LIMIT :limit"""
        ),
        {"limit": limit},
    ).all()
    return [(r[0], r[1], int(r[2]), float(r[3]), None if r[4] is None else float(r[4])) for r in rows]


def count_completed(conn: Any) -> int:
    import sqlalchemy as sa

    return int(conn.execute(sa.text("SELECT count(*) FROM task_attempts WHERE status = 'completed'")).scalar_one())


class IrtCache:
    """One fit per process, refitted lazily: after `ttl_s`, and only if attempts changed.

    While nothing is fitted yet (too few attempts) every call re-counts, so the fallback
    starts answering as soon as the data allows rather than a TTL later."""

    def __init__(self, ttl_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._fit: IrtFit | None = None
        self._checked_at: float | None = None
        self._n: int | None = None

    @property
    def ttl_s(self) -> float:
        if self._ttl_s is not None:
            return self._ttl_s
        from shared.config import get_settings

        return get_settings().predictor_irt_ttl_s

    def _fresh(self) -> bool:
        # Without a fit the table holds fewer than MIN_ATTEMPTS completed rows, so
        # re-counting is cheap: the fallback appears as soon as there is data for it.
        return self._fit is not None and self._checked_at is not None and self._clock() - self._checked_at < self.ttl_s

    def get(self, conn: Any) -> IrtFit | None:
        if self._fresh():
            return self._fit
        with self._lock:
            if self._fresh():
                return self._fit
            n = count_completed(conn)
            if n != self._n:
                self._fit = fit_irt(load_attempts(conn)) if n >= MIN_ATTEMPTS else None
                self._n = n
            self._checked_at = self._clock()
            return self._fit

    def invalidate(self) -> None:
        with self._lock:
            self._fit, self._checked_at, self._n = None, None, None
