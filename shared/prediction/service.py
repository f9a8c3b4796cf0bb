"""Before a task: P(correct) and expected seconds, and which model answered.

Who answers (the response's `model`):
1. `network`: the published INT8 predictor, when it is loaded and knows both the user
   and the topic (they were in its training data);
2. `irt`: the IRT-style fallback fitted from the attempts table, when the network is
   missing or broken, or when it does not know the user or the topic but the fallback
   does (it has completed attempts of them);
3. `network` with its learned 'unknown' rows, when neither knows the ids: the network
   still reads the 11 history features, which the fallback cannot;
4. `irt` with population parameters when there is no network but attempts exist;
5. `default` (BKT mastery + a difficulty ramp, `defaults.py`) when nothing is fitted.
The answer is never an error: a model that raises or returns garbage is logged and the
next one answers. `unknown` lists what the answering model did not know.

Whoever answers, P(correct) is clipped to [P_MIN, P_MAX] = [0.01, 0.99] and seconds to
[MIN_SECONDS, MAX_SECONDS]. No learner's outcome is certain (students slip and guess:
BKT's own prediction never leaves [guess, 1 - slip]), so 0 or 1 is always a wrong
claim; it would also make the log loss of one surprising answer infinite (the
retraining gate and calibration read these predictions) and tell a student "you
cannot fail" or "you cannot succeed". 1% / 99% leaves every model its useful range
(a student model more confident than that is overconfident) and bounds the log loss
of a single answer at ln(100) = 4.6.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from shared.attempts import record_prediction, resolve_task
from shared.curriculum import list_questions
from shared.identity import Principal
from shared.mastery.store import current_mastery, topic_bkt_params
from shared.prediction import defaults
from shared.prediction.features import HistoryFeatures, encode, history_features, recent_attempts
from shared.prediction.irt import IrtCache, IrtFit
from shared.users import ensure_user

log = logging.getLogger(__name__)

NETWORK, IRT, DEFAULT = "network", "irt", "default"
#: the range of P(correct) any model's answer is clipped to (see the module docstring)
P_MIN, P_MAX = 0.01, 0.99
MIN_SECONDS = 1.0
MAX_SECONDS = 4 * 3600.0

_irt_cache = IrtCache()


def irt_cache() -> IrtCache:
    """The process-wide fallback fit (tests invalidate it)."""
    return _irt_cache


@dataclass
class Prediction:
    p_correct: float
    expected_seconds: float
    model: str
    model_version: str | None
    features: HistoryFeatures
    unknown: list[str] = field(default_factory=list)
    fallback_reason: str | None = None

    def __post_init__(self) -> None:
        self.p_correct = bounded_p(self.p_correct)
        self.expected_seconds = min(max(float(self.expected_seconds), MIN_SECONDS), MAX_SECONDS)

    def as_dict(self) -> dict[str, Any]:
        return {
            "p_correct": round(self.p_correct, 4),
            "expected_seconds": round(self.expected_seconds, 1),
            "model": self.model,
            "model_version": self.model_version,
            "features": self.features.as_dict(),
            "unknown": self.unknown,
            "fallback_reason": self.fallback_reason,
        }


def predict_levels(
    conn: sa.Connection,
    user_id: str,
    topic_id: str,
    difficulties: Iterable[int],
    *,
    registry: Any = None,
    cache: IrtCache | None = None,
) -> dict[int, Prediction]:
    """One prediction per distinct difficulty of a topic (what a question list needs:
    the predictors read user, topic and difficulty, not the question's text)."""
    return {
        level: predict(conn, user_id, topic_id, level, registry=registry, cache=cache)
        for level in sorted(set(int(d) for d in difficulties))
    }


def bounded_p(p: float) -> float:
    """P(correct) clipped to [P_MIN, P_MAX]; NaN is no answer and raises."""
    p = float(p)
    if math.isnan(p):
        raise ValueError("P(correct) is NaN")
    return min(max(p, P_MIN), P_MAX)


def _network(registry: Any) -> tuple[Any | None, str | None, str | None]:
    """(model, version, reason it is unavailable)."""
    from shared.models.registry import ModelUnavailableError, get_registry

    registry = registry or get_registry()
    try:
        model = registry.get("predictor")
    except ModelUnavailableError as exc:
        return None, None, f"network model unavailable: {exc}"
    except Exception as exc:  # a broken store must not stop predictions (logged with its trace)
        log.exception("predictor registry failed")
        return None, None, f"network model unavailable: {type(exc).__name__}"
    return model, registry.version, None


def _sane(p: float, seconds: float) -> bool:
    return math.isfinite(p) and math.isfinite(seconds) and 0.0 <= p <= 1.0 and 0.0 <= seconds


def predict(
    conn: sa.Connection,
    user_id: str,
    topic_id: str,
    difficulty: int,
    *,
    registry: Any = None,
    cache: IrtCache | None = None,
) -> Prediction:
    """The prediction for this user, topic and difficulty (the topic must exist)."""
    features = history_features(conn, user_id, topic_id, difficulty)
    net, net_version, reason = _network(registry)
    irt, irt_reason = _fallback_fit(conn, cache or _irt_cache)
    net_known: dict[str, bool] = {}
    if net is not None:
        try:
            net_known = net.known(user_id, topic_id)
        except Exception as exc:  # a broken model falls back, whichever call breaks
            log.exception("predictor network failed")
            net, reason = None, f"network model failed: {type(exc).__name__}"
    missing = [k for k, v in net_known.items() if not v]
    irt_knows = irt is not None and (
        ("user" in missing and irt.knows_user(user_id)) or ("topic" in missing and irt.knows_topic(topic_id))
    )
    if net is not None and missing and irt_knows:
        reason = f"network model does not know the {' or '.join(missing)}; the fallback does"
    elif net is not None:
        try:
            # a version built before the sequence input has recent_window 0
            window = int(getattr(net, "recent_window", 0))
            if window:
                recent = recent_attempts(conn, user_id, window)
                p, seconds = net.predict(user_id, topic_id, difficulty, encode(features), recent=recent)
            else:
                p, seconds = net.predict(user_id, topic_id, difficulty, encode(features))
            if _sane(p, seconds):
                return Prediction(p, seconds, NETWORK, net_version, features, missing)
            reason = f"network model returned an invalid answer ({p}, {seconds})"
        except Exception as exc:  # noqa: BLE001 - a broken model falls back
            reason = f"network model failed: {type(exc).__name__}"
        log.error("predictor network failed; falling back: %s", reason)

    if irt is not None:
        try:
            return _irt_prediction(conn, irt, user_id, topic_id, difficulty, features, reason)
        except Exception as exc:
            log.exception("IRT fallback failed; answering with the defaults")
            irt_reason = f"fallback model failed: {type(exc).__name__}"

    p_known = current_mastery(conn, user_id, topic_id)
    p, seconds = defaults.default_prediction(
        0.5 if p_known is None else p_known, _params(conn, topic_id), difficulty, features.recent5_avg_seconds
    )
    reason = "; ".join(r for r in (reason, irt_reason) if r) or "no model fitted yet"
    return Prediction(p, seconds, DEFAULT, defaults.VERSION, features, ["user", "topic"], reason)


def _fallback_fit(conn: sa.Connection, cache: IrtCache) -> tuple[IrtFit | None, str | None]:
    """The cached IRT fit, or (None, why) when fitting failed: never an error."""
    try:
        return cache.get(conn), None
    except sa.exc.DBAPIError:
        raise  # the database itself failed: the transaction is gone, nothing can answer
    except Exception as exc:
        log.exception("IRT fallback fit failed")
        return None, f"fallback model failed: {type(exc).__name__}"


def _irt_prediction(
    conn: sa.Connection,
    irt: IrtFit,
    user_id: str,
    topic_id: str,
    difficulty: int,
    features: HistoryFeatures,
    reason: str | None,
) -> Prediction:
    p = irt.p_correct(user_id, topic_id, difficulty)
    if irt.n_timed:
        seconds = irt.seconds(user_id, topic_id, difficulty)
    else:
        seconds = defaults.default_prediction(0.5, _params(conn, topic_id), difficulty, features.recent5_avg_seconds)[1]
    if not _sane(p, seconds):
        raise ValueError(f"fallback model returned an invalid answer ({p}, {seconds})")
    unknown = [k for k, known in (("user", irt.knows_user(user_id)), ("topic", irt.knows_topic(topic_id))) if not known]
    return Prediction(p, seconds, IRT, irt.version, features, unknown, reason)


def _params(conn: sa.Connection, topic_id: str) -> Any:
    from shared.mastery.bkt import BKTParams

    return topic_bkt_params(conn, topic_id) or BKTParams()


def predict_and_record(
    conn: sa.Connection,
    user: Principal,
    *,
    topic_id: str | None,
    question_id: str | None,
    difficulty: int | None,
) -> dict[str, Any]:
    """Before a task: resolve it, predict, and record the prediction as a 'predicted'
    attempt to complete later (one transaction: `conn` is the caller's)."""
    topic_id, question_id, difficulty = resolve_task(conn, topic_id, question_id, difficulty)
    ensure_user(conn, user)
    prediction = predict(conn, user.uid, topic_id, difficulty)
    attempt_id = record_prediction(
        conn,
        user.uid,
        topic_id=topic_id,
        question_id=question_id,
        difficulty=difficulty,
        p_correct=prediction.p_correct,
        expected_seconds=prediction.expected_seconds,
        predictor=prediction.model,
        predictor_version=prediction.model_version,
    )
    return {
        **prediction.as_dict(),
        "attempt_id": attempt_id,
        "user_id": user.uid,
        "topic_id": topic_id,
        "question_id": question_id,
        "difficulty": difficulty,
    }


def questions_for(
    conn: sa.Connection, user_id: str, topic_id: str, *, difficulty: int | None, limit: int, with_predictions: bool
) -> list[dict[str, Any]]:
    """A topic's questions as a student sees them; with predictions, each carries this
    student's P(correct) and expected seconds. A read: nothing is recorded."""
    items = list_questions(conn, topic_id, difficulty=difficulty, limit=limit)
    if with_predictions:
        by_level = predict_levels(conn, user_id, topic_id, (q["difficulty"] for q in items))
        for item in items:
            p = by_level[item["difficulty"]]
            item["prediction"] = {
                "p_correct": round(p.p_correct, 4),
                "expected_seconds": round(p.expected_seconds, 1),
                "model": p.model,
                "model_version": p.model_version,
            }
    return items
