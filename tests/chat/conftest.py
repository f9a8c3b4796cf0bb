"""Chat fixtures: the demo course in the test database, and stand-ins for the models
so pipeline behaviour can be pinned down independently of what `make models` built."""

from __future__ import annotations

import pytest

from local.stack import DEMO_COURSE
from shared.curriculum import load_course_file
from shared.models.intent import IntentPrediction
from tests.fakes import HashEncoder


@pytest.fixture()
def course(db):
    """The demo course, without embeddings (retrieval runs on full text)."""
    with db.begin() as conn:
        load_course_file(conn, DEMO_COURSE)
    return db


class NoModels:
    """A registry with nothing published: every model falls back."""

    version = None

    def get(self, name):
        from shared.models.registry import ModelUnavailableError

        raise ModelUnavailableError("nothing published (test)")


class FixedIntent:
    def __init__(self, label: str, confidence: float) -> None:
        self.label, self.confidence = label, confidence

    def predict(self, texts):
        return [IntentPrediction(self.label, self.confidence, {self.label: self.confidence})]


class FixedConfusion:
    threshold = 0.5

    def __init__(self, p: float) -> None:
        self.p = p
        self.windows = []

    def predict(self, embeddings, timing):
        self.windows.append((embeddings.shape, list(timing)))
        return self.p


class StubRegistry:
    version = "vtest"

    def __init__(self, **models) -> None:
        self.models = models

    def get(self, name):
        from shared.models.registry import ModelUnavailableError

        if name not in self.models:
            raise ModelUnavailableError(name)
        return self.models[name]


class NoEncoder:
    model_name = "none"

    def embed_one(self, text):
        raise RuntimeError("encoder down (test)")


@pytest.fixture()
def stubs():
    return {
        "NoModels": NoModels,
        "FixedIntent": FixedIntent,
        "FixedConfusion": FixedConfusion,
        "StubRegistry": StubRegistry,
        "NoEncoder": NoEncoder,
        "HashEncoder": HashEncoder,
    }
