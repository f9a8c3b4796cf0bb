"""The statistical fallback: an IRT-style model fitted from the attempts table with numpy.

Correctness, a Rasch model with a difficulty-level term (1PL + facets):

    logit P(correct) = mu + theta_user - b_topic - delta_level

Response time, log-normal in the spirit of LNIRT (van der Linden, 2006):

    log seconds = nu + beta_topic + gamma_level - tau_user + e,   e ~ N(0, sigma^2)

Both are fitted by penalised maximum likelihood (MAP with Gaussian priors): theta, b,
tau, beta shrink to 0 and delta/gamma to the default difficulty ramp of
`shared.prediction.defaults`, so a user or topic with two attempts gets a modest
estimate and one with none gets exactly the population answer. Block-coordinate
Newton steps (one diagonal Newton step per parameter block, alternating) converge in
a few dozen passes over at most `MAX_ATTEMPTS` rows: tens of milliseconds, no scipy.

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
ITERATIONS = 40

Attempt = tuple[str, str, int, float, float | None]  # user, topic, level, credit, seconds


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


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

    def p_correct(self, user_id: str, topic_id: str, level: int) -> float:
        z = (
            self.mu
            + self.theta.get(user_id, 0.0)
            - self.b.get(topic_id, 0.0)
            - self.delta.get(int(level), DIFFICULTY_LOGIT_SLOPE * (int(level) - 3))
        )
        return float(1.0 / (1.0 + math.exp(-z)))

    def seconds(self, user_id: str, topic_id: str, level: int) -> float:
        """Median seconds (exp of the log-normal mean)."""
        z = (
            self.nu
            + self.beta.get(topic_id, 0.0)
            + self.gamma.get(int(level), DIFFICULTY_LOG_TIME_SLOPE * (int(level) - 3))
            - self.tau.get(user_id, 0.0)
        )
        return float(math.exp(z))


def _index(values: Sequence[Any]) -> tuple[list[Any], np.ndarray]:
    keys = sorted(set(values), key=str)
    lookup = {k: i for i, k in enumerate(keys)}
    return keys, np.fromiter((lookup[v] for v in values), dtype=np.int64, count=len(values))


def fit_irt(attempts: Sequence[Attempt], *, iterations: int = ITERATIONS) -> IrtFit | None:
    """Fit both parts from (user, topic, level, credit in [0,1], seconds or None) rows."""
    if len(attempts) < MIN_ATTEMPTS:
        return None
    users, u = _index([a[0] for a in attempts])
    topics, t = _index([a[1] for a in attempts])
    levels = np.array([int(a[2]) for a in attempts], dtype=np.int64)
    y = np.clip(np.array([float(a[3]) for a in attempts]), 0.0, 1.0)
    nu_, nt = len(users), len(topics)
    theta, b = np.zeros(nu_), np.zeros(nt)
    level_prior = DIFFICULTY_LOGIT_SLOPE * (np.arange(6) - 3)
    delta = level_prior.copy()
    rate = (y.sum() + 1) / (len(y) + 2)
    mu = math.log(rate / (1 - rate))

    def residual() -> tuple[np.ndarray, np.ndarray]:
        p = _sigmoid(mu + theta[u] - b[t] - delta[levels])
        return y - p, np.maximum(p * (1 - p), 1e-6)

    for _ in range(iterations):
        r, w = residual()
        theta += (np.bincount(u, r, nu_) - RIDGE_ABILITY * theta) / (np.bincount(u, w, nu_) + RIDGE_ABILITY)
        r, w = residual()
        b -= (np.bincount(t, r, nt) - RIDGE_ABILITY * b) / (np.bincount(t, w, nt) + RIDGE_ABILITY)
        r, w = residual()
        delta -= (np.bincount(levels, r, 6) - RIDGE_LEVEL * (delta - level_prior)) / (
            np.bincount(levels, w, 6) + RIDGE_LEVEL
        )
        r, w = residual()
        mu += float(r.sum() / w.sum())

    fit = IrtFit(
        version="",
        n_attempts=len(attempts),
        mu=float(mu),
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
    timed = [a for a in attempts if a[4] is not None and a[4] > 0]
    fit.n_timed = len(timed)
    if len(timed) < MIN_ATTEMPTS:
        return
    users, u = _index([a[0] for a in timed])
    topics, t = _index([a[1] for a in timed])
    levels = np.array([int(a[2]) for a in timed], dtype=np.int64)
    log_s = np.log(np.array([float(a[4]) for a in timed]))
    tau, beta = np.zeros(len(users)), np.zeros(len(topics))
    gamma_prior = DIFFICULTY_LOG_TIME_SLOPE * (np.arange(6) - 3)
    gamma = gamma_prior.copy()
    nu = float(np.mean(log_s - gamma[levels]))
    for _ in range(iterations):
        r = log_s - (nu + beta[t] + gamma[levels] - tau[u])
        tau -= np.bincount(u, r, len(users)) / (np.bincount(u, minlength=len(users)) + RIDGE_TIME)
        r = log_s - (nu + beta[t] + gamma[levels] - tau[u])
        beta += np.bincount(t, r, len(topics)) / (np.bincount(t, minlength=len(topics)) + RIDGE_TIME)
        r = log_s - (nu + beta[t] + gamma[levels] - tau[u])
        gamma += (np.bincount(levels, r, 6) - RIDGE_TIME * (gamma - gamma_prior)) / (
            np.bincount(levels, minlength=6) + RIDGE_TIME
        )
        r = log_s - (nu + beta[t] + gamma[levels] - tau[u])
        nu += float(r.mean())
    r = log_s - (nu + beta[t] + gamma[levels] - tau[u])
    fit.nu = nu
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
