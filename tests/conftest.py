"""Test fixtures: one embedded Postgres per session, a clean database per test.

The environment is set before anything reads settings: a private state folder
(so tests never touch the developer's `.state/pgdata`), Auth emulator mode, and
a test project id. The model store stays the repository's `.state/models`,
where `make models` publishes, so model tests use the real artifacts.

Imports of the serving stack happen inside fixtures: the training venv also
loads this file when it runs tests/model_export, and has no database packages.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.needs import missing

REPO = Path(__file__).resolve().parent.parent
TEST_PROJECT = "demo-cognitive-core-test"
_STATE = Path(tempfile.mkdtemp(prefix="cc-test-state-"))
# Registered before the embedded server's own exit hook, so it runs after the
# server has stopped (atexit is last-in, first-out).
atexit.register(shutil.rmtree, _STATE, ignore_errors=True)

os.environ.update(
    {
        "COGNITIVE_ENV": "test",
        "COGNITIVE_ENV_FILE": str(_STATE / "no.env"),  # never read a developer's .env
        "STATE_DIR": str(_STATE),
        "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
        "CORS_ORIGINS": "http://localhost:5000,https://app.example.com",
        "MAX_REQUEST_BYTES": "16384",
        # Retrain requests published in-process by the local outbox reach the retrain
        # function, which would start the real training job (minutes of CPU, publishing
        # into the model store) behind the test's back. Tests that run the job pass a
        # launcher of their own; every other launch fails at once, visibly, as 'failed'.
        "TRAINING_PYTHON": "/nonexistent/no-training-jobs-in-tests",
        "RATE_LIMITS": "off",  # per-user LLM limits: tests/drills/test_drill_abuse.py turns them on
        # One process imports every function (their declared models are a union that depends on
        # import order): tests serve every model; tests/models/test_registry.py tests the subsets.
        "SERVED_MODELS": "all",
    }
)
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))
for _var in ("DATABASE_URL", "CLOUD_SQL_INSTANCE", "FIREBASE_PROJECT_ID"):
    os.environ.pop(_var, None)

SHARED_DATA = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))

# Tables a test may write to; emptied before each test that uses `db`.
_TABLES = (
    "model_pointer_events, silver_labels, label_events, label_counters, idempotency_keys, "
    "prediction_counters, retrain_requests, training_runs, model_versions, generation_log, chat_messages, "
    "interactions, chat_sessions, student_progress, mastery_state, task_attempts, questions, "
    "knowledge_terms, knowledge_nodes, topics, courses, users"
)


@pytest.fixture(scope="session")
def engine() -> Iterator[Any]:
    """The process engine on the embedded server in the test state folder, migrated."""
    from shared.config import reset_settings_cache
    from shared.db.engine import get_engine, set_engine
    from shared.db.migrate import upgrade

    reset_settings_cache()
    eng = get_engine()
    upgrade(eng)
    yield eng
    set_engine(None)


@pytest.fixture()
def db(engine: Any) -> Any:
    """A clean schema for this test: every table emptied, the migration kept."""
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE"))
    return engine


@pytest.fixture()
def demo_course(db: Any) -> Any:
    """The local stack's demo course (local/demo/course.json) loaded without embeddings
    (retrieval runs on full text); returns the engine."""
    from local.stack import DEMO_COURSE
    from shared.curriculum import load_course_file

    with db.begin() as conn:
        load_course_file(conn, DEMO_COURSE)
    return db


@pytest.fixture(scope="session")
def demo_course_vectors() -> dict[str, Any]:
    """Text -> vector of the published encoder, kept for the session: the demo course's
    100 nodes took 4-5 s to embed for every test that loaded them."""
    return {}


@pytest.fixture()
def embedded_demo_course(db: Any, demo_course_vectors: dict[str, Any]) -> Any:
    """The demo course loaded with the published encoder's vectors; returns the engine.
    The registry is reset (fresh models from the repository's store) and the embedding
    service too (an empty query cache); node vectors come from the session's memo."""
    import numpy as np

    from local.stack import DEMO_COURSE
    from shared.curriculum import load_course_file
    from shared.embeddings.service import get_embedding_service, reset_embedding_service
    from shared.models.registry import get_registry, reset_registry

    reset_registry()
    reset_embedding_service()
    if get_registry().version is None:
        missing("no model version published (run `make models`)")
    service = get_embedding_service()

    def embed(texts: Any) -> Any:
        new = [t for t in dict.fromkeys(texts) if t not in demo_course_vectors]
        if new:
            demo_course_vectors.update(zip(new, service.embed(new), strict=True))
        return np.asarray([demo_course_vectors[t] for t in texts])

    with db.begin() as conn:
        load_course_file(conn, DEMO_COURSE, embed=embed, embedding_model=service.model_name)
    return db


@pytest.fixture(scope="session")
def settings() -> Any:
    from shared.config import get_settings

    return get_settings()


@pytest.fixture(scope="session")
def app() -> Any:
    """The local server's WSGI app: every function mounted under /api/<name>."""
    from local.server import build_app

    return build_app()


@pytest.fixture()
def client(app: Any) -> Any:
    from werkzeug.test import Client

    return Client(app)


@pytest.fixture(scope="session")
def token() -> Callable[..., str]:
    """`token("alice")`, `token("root", admin=True)`, `token("bob", expires_in=-60)`."""
    from local.tokens import mint_emulator_token

    def make(uid: str, *, admin: bool = False, project: str = TEST_PROJECT, **kw: Any) -> str:
        return mint_emulator_token(uid, project, admin=admin, **kw)

    return make


@pytest.fixture(scope="session")
def bearer(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    def make(uid: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(uid, **kw)}"}

    return make


@pytest.fixture(scope="session")
def server_dir() -> Iterator[Callable[[str], Path]]:
    """`server_dir("e2e")`: a fresh folder for a stack or server a test starts, removed
    at the end of the session (`local.launcher.new_state_dir` says why not tmp_path)."""
    from local.launcher import new_state_dir

    made: list[Path] = []

    def make(prefix: str) -> Path:
        made.append(new_state_dir(prefix))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        missing(f"shared data sets not found at {SHARED_DATA} (set SHARED_DATA_DIR)")
    return SHARED_DATA


def pytest_collection_finish(session: pytest.Session) -> None:
    """Before any test that needs the database runs: start it and run the pgvector
    self-test, so a pgvector that cannot run on this CPU stops the session with one
    message instead of dozens of unrelated failures."""
    if not any("engine" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    from shared.config import reset_settings_cache
    from shared.db.engine import get_engine
    from shared.db.selftest import VectorSelfTestError

    reset_settings_cache()
    try:
        get_engine()
    except VectorSelfTestError as exc:
        pytest.exit(f"the database cannot serve on this machine: {exc}", returncode=3)
