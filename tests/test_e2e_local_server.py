"""End to end: the README's local stack as a subprocess, called over HTTP."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import requests

from local.launcher import StackError, start_stack
from local.tokens import mint_emulator_token

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


#: What the e2e stack (and the drills' stack, tests/drills/conftest.py) is started with.
STACK_ENV = {"GOOGLE_CLOUD_PROJECT": "demo-e2e", "CORS_ORIGINS": "http://localhost:5000"}


@pytest.fixture(scope="module")
def server(server_dir):
    """The stack, started as a script's background job is: with SIGINT ignored, which the
    child inherits (a non-interactive shell does this to `&` jobs). Ctrl-C must stop it
    all the same (`test_ctrl_c_stops_server_and_database`)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        stack = start_stack(server_dir("e2e-state"), STACK_ENV)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        yield stack
    finally:
        stack.stop()


def auth(uid: str, **kw) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_emulator_token(uid, 'demo-e2e', **kw)}"}


def test_health_reports_database_and_demo_course(server):
    body = requests.get(f"{server.base}/api/health", timeout=10).json()
    assert body["status"] == "ok"
    db = body["database"]
    assert db["status"] == "ok" and db["source"] == "embedded"
    assert db["topics"] >= 6 and db["knowledge_nodes"] >= 20 and db["questions"] >= 10
    assert db["pgvector"]
    assert "models" in body and "llm" in body


def test_functions_answer_over_http_with_conventions(server):
    base = server.base
    topics = requests.get(f"{base}/api/chat/topics", headers=auth("alice"), timeout=10)
    assert topics.status_code == 200
    assert topics.headers["X-Request-Id"] == topics.json()["request_id"]
    assert {t["id"] for t in topics.json()["topics"]} >= {"py-loops", "phys-kinematics"}

    assert requests.get(f"{base}/api/chat/topics", timeout=10).status_code == 401
    assert (
        requests.get(f"{base}/api/prediction/mastery?user_id=bob", headers=auth("alice"), timeout=10).status_code == 403
    )
    mastery = requests.get(f"{base}/api/prediction/mastery", headers=auth("alice"), timeout=10).json()
    assert all(0 <= m["p_mastery"] <= 1 for m in mastery["mastery"])
    bad = requests.post(
        f"{base}/api/feedback", data="{", headers={**auth("alice"), "Content-Type": "application/json"}, timeout=10
    )
    assert bad.status_code == 400 and bad.json()["error"]["request_id"]
    assert requests.get(f"{base}/api/unknown", timeout=10).status_code == 404
    pre = requests.options(
        f"{base}/api/feedback",
        headers={"Origin": "http://localhost:5000", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert pre.status_code == 204 and pre.headers["Access-Control-Allow-Origin"] == "http://localhost:5000"


def test_ctrl_c_stops_server_and_database(server):
    assert (server.pgdata / "postmaster.pid").exists()
    assert server.stop(signal.SIGINT) == 0, server.log_tail(6000)
    assert server.database_stopped(), "embedded Postgres still running after Ctrl-C"


def test_sigterm_stops_server_and_database(server_dir):
    stack = start_stack(server_dir("sigterm"), STACK_ENV)
    try:
        assert (stack.pgdata / "postmaster.pid").exists()
        assert stack.stop(signal.SIGTERM) == 0, stack.log_tail(6000)
        assert stack.database_stopped(), "embedded Postgres still running after SIGTERM"
    finally:
        stack.stop(signal.SIGKILL)


def test_a_stack_that_exits_early_is_reported_with_its_log(server_dir):
    with pytest.raises(StackError, match=r"exited early[\s\S]*refusing to run the local stack in the cloud"):
        start_stack(server_dir("refused"), {"COGNITIVE_ENV": "cloud"}, health_timeout_s=60)
