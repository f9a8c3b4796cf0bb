"""Grading fixtures: a small course in the database, a grading service with chosen
graders, and engineer D's loopback Vertex stub (reused from tests/llm/conftest.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_LLM_TESTS = Path(__file__).resolve().parent.parent / "llm"


def _load(name: str, path: Path) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


llm_stubs = _load("llm_stubs", _LLM_TESTS / "llm_stubs.py")  # the name tests/llm imports it by
_llm_fixtures = _load("llm_conftest_for_grading", _LLM_TESTS / "conftest.py")

stub_server = _llm_fixtures.stub_server  # the fixture, re-exported for tests/grading

STUB_PROJECT, STUB_LOCATION, STUB_MODEL = "stub-project", "europe-west4", "gemini-2.5-flash"

SALT_REFERENCE = "The water was evaporated, leaving the salt."
QUESTIONS = [
    {
        "id": "q-mcq",
        "topic_id": "t-ops",
        "kind": "mcq",
        "prompt": "What is 7 // 2 in Python?",
        "options": ["3.5", "3", "4", "1"],
        "correct_option": 1,
        "explanation": "// is floor division.",
    },
    {
        "id": "q-salt",
        "topic_id": "t-ops",
        "kind": "short_answer",
        "prompt": "You mixed salt into water. How do you get the salt back?",
        "reference_answer": SALT_REFERENCE,
        "explanation": "Evaporation leaves dissolved solids behind.",
    },
    {
        "id": "q-other",
        "topic_id": "t-strings",
        "kind": "short_answer",
        "prompt": "Why can't s[0] = 'J' work?",
        "reference_answer": "Strings are immutable, so item assignment raises TypeError.\n---\n"
        "A str cannot be changed in place; build a new string instead.",
    },
]


@pytest.fixture()
def course(db: Any) -> Any:
    """Two topics and three questions (MCQ, two short answers); returns the engine."""
    import sqlalchemy as sa

    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c1', 'Python')"))
        conn.execute(
            sa.text(
                "INSERT INTO topics (id, course_id, title, position) VALUES "
                "('t-ops', 'c1', 'Operators', 0), ('t-strings', 'c1', 'Strings', 1)"
            )
        )
        for q in QUESTIONS:
            conn.execute(
                sa.text(
                    """INSERT INTO questions (id, topic_id, kind, prompt, options, correct_option,
                                              reference_answer, explanation)
                       VALUES (:id, :topic_id, :kind, :prompt, CAST(:options AS jsonb), :correct_option,
                               :reference_answer, :explanation)"""
                ),
                {
                    "options": json.dumps(q.get("options")) if "options" in q else None,
                    "correct_option": q.get("correct_option"),
                    "reference_answer": q.get("reference_answer"),
                    "explanation": q.get("explanation"),
                    **{k: q[k] for k in ("id", "topic_id", "kind", "prompt")},
                },
            )
    return db


@pytest.fixture()
def use_graders(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """`use_graders(offline=[...], router=...)` installs a GradingService for the function."""
    from shared.grading import service as service_module
    from shared.grading.llm_grader import LLMGrader
    from shared.grading.offline import LexicalGrader, OfflineGrader
    from shared.llm import LLMRouter
    from shared.llm.providers.offline import OfflineProvider

    def install(offline: list[Any] | None = None, router: Any = None) -> Any:
        router = router or LLMRouter({"offline": OfflineProvider()}, ["offline"])
        svc = service_module.GradingService(offline=OfflineGrader(offline or [LexicalGrader()]), llm=LLMGrader(router))
        monkeypatch.setattr(service_module, "_service", svc)
        return svc

    return install


@pytest.fixture()
def vertex_router(stub_server: Any) -> Iterator[Any]:
    """A router whose first provider is the Vertex provider pointed at the loopback stub."""
    from google.oauth2.credentials import Credentials

    from shared.llm import LLMRouter
    from shared.llm.providers.offline import OfflineProvider
    from shared.llm.providers.vertex import VertexProvider

    providers = {
        "vertex": VertexProvider(
            STUB_PROJECT, STUB_LOCATION, base_url=stub_server.url, credentials=Credentials(token="stub-token")
        ),
        "offline": OfflineProvider(),
    }
    yield LLMRouter(
        providers,
        list(providers),
        {"vertex": {"default": STUB_MODEL}},
        timeout_s=5.0,
        max_attempts=1,
        json_attempts=2,
        sleep=lambda _s: None,
    )


def post_grade(client: Any, headers: dict[str, str], **body: Any) -> Any:
    return client.post("/api/grading", json=body, headers=headers)
