"""Fixtures for the prediction tests: a small course, and a controllable network model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

TOPICS = ("py-basics", "py-loops", "py-functions")


@pytest.fixture()
def course(db: Any) -> Any:
    """One course with three topics; prediction tables emptied (migration 0003's counter too)."""
    with db.begin() as conn:
        conn.execute(sa.text("TRUNCATE prediction_counters"))
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('py', 'Python')"))
        for i, topic in enumerate(TOPICS):
            conn.execute(
                sa.text("INSERT INTO topics (id, course_id, title, position) VALUES (:id, 'py', :id, :i)"),
                {"id": topic, "i": i},
            )
        conn.execute(
            sa.text(
                """INSERT INTO questions (id, topic_id, kind, prompt, options, correct_option, difficulty)
                   VALUES ('q-loops-1', 'py-loops', 'mcq', 'How many times?',
                           '["1", "2", "3"]'::jsonb, 2, 4)"""
            )
        )
    return db


@pytest.fixture(autouse=True)
def fresh_fallback() -> Iterator[None]:
    """The IRT fit is cached per process: every test starts without one."""
    from shared.prediction.service import irt_cache

    irt_cache().invalidate()
    yield
    irt_cache().invalidate()


class FakeNetwork:
    """Stands in for PredictorModel (the real one is tested against ONNX in tests/model_export)."""

    def __init__(
        self, users: set[str], topics: set[str], p: float = 0.7, seconds: float = 55.0, recent_window: int = 0
    ) -> None:
        self.users, self.topics = users, topics
        self.p, self.seconds = p, seconds
        self.recent_window = recent_window  # 0: a version without the sequence input
        self.calls: list[tuple[str, str, int, np.ndarray]] = []
        self.recent: list[list[tuple[str, float]] | None] = []

    def known(self, user_id: str, topic_id: str) -> dict[str, bool]:
        return {"user": user_id in self.users, "topic": topic_id in self.topics}

    def predict(
        self,
        user_id: str,
        topic_id: str,
        difficulty: int,
        features: np.ndarray,
        recent: list[tuple[str, float]] | None = None,
    ) -> tuple[float, float]:
        self.calls.append((user_id, topic_id, difficulty, features))
        self.recent.append(recent)
        return self.p, self.seconds


class FakeRegistry:
    def __init__(self, model: Any = None, version: str = "v7", error: Exception | None = None) -> None:
        self.model, self.version, self.error = model, version, error

    def get(self, name: str) -> Any:
        from shared.models.registry import ModelUnavailableError

        assert name == "predictor"
        if self.error is not None:
            raise self.error
        if self.model is None:
            raise ModelUnavailableError("version v7 has no model 'predictor'")
        return self.model


@pytest.fixture()
def network(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install a registry whose predictor is a FakeNetwork (or none): `network(model)`."""
    import shared.models.registry as registry_module

    def install(model: Any = None, **kw: Any) -> FakeRegistry:
        registry = FakeRegistry(model, **kw)
        monkeypatch.setattr(registry_module, "get_registry", lambda: registry)
        return registry

    install(None)  # by default: no network model, whatever the local store holds
    return install


@pytest.fixture()
def complete_some() -> Any:
    """`complete_some(engine, user, [(topic, difficulty, correct, seconds), ...])`: completed
    attempts written through complete_attempt (the retrain threshold set out of reach)."""
    from shared.attempts import complete_attempt

    def write(engine: Any, user: str, outcomes: list[tuple[str, int, bool, float | None]]) -> None:
        with engine.begin() as conn:
            for topic, difficulty, correct, seconds in outcomes:
                complete_attempt(
                    conn,
                    user,
                    topic_id=topic,
                    difficulty=difficulty,
                    correct=float(correct),
                    time_seconds=seconds,
                    retrain_every=1000,
                )

    return write


@pytest.fixture()
def topics() -> tuple[str, ...]:
    return TOPICS


@pytest.fixture()
def fake_network() -> type[FakeNetwork]:
    return FakeNetwork
