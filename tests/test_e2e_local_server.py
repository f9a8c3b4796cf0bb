"""End to end: the README's local stack as a subprocess, called over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.tokens import mint_emulator_token

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(state: Path) -> tuple[subprocess.Popen, str, object]:
    """`python -m local serve` on a free port with its own state folder, once healthy."""
    port = free_port()
    env = {
        **os.environ,
        "STATE_DIR": str(state),
        "GOOGLE_CLOUD_PROJECT": "demo-e2e",
        "CORS_ORIGINS": "http://localhost:5000",
    }
    env.pop("DATABASE_URL", None)
    log = open(state / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.fail(f"server exited early:\n{(state / 'server.log').read_text()[-3000:]}")
        try:
            if requests.get(f"{base}/api/health", timeout=2).status_code == 200:
                return proc, base, log
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop(proc)
            log.close()
            pytest.fail("server did not become healthy in 120 s")
        time.sleep(0.3)


def stop(proc: subprocess.Popen, sig: int = signal.SIGINT) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


def wait_for_database_stop(pgdata: Path) -> bool:
    deadline = time.monotonic() + 15
    while (pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return not (pgdata / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def server(server_dir):
    state = server_dir("e2e-state")
    proc, base, log = start_server(state)
    try:
        yield {"base": base, "proc": proc, "state": state}
    finally:
        stop(proc)
        log.close()


def auth(uid: str, **kw) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_emulator_token(uid, 'demo-e2e', **kw)}"}


def test_health_reports_database_and_demo_course(server):
    body = requests.get(f"{server['base']}/api/health", timeout=10).json()
    assert body["status"] == "ok"
    db = body["database"]
    assert db["status"] == "ok" and db["source"] == "embedded"
    assert db["topics"] >= 6 and db["knowledge_nodes"] >= 20 and db["questions"] >= 10
    assert db["pgvector"]
    assert "models" in body and "llm" in body


def test_functions_answer_over_http_with_conventions(server):
    base = server["base"]
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
    proc, pgdata = server["proc"], server["state"] / "pgdata"
    assert (pgdata / "postmaster.pid").exists()
    assert stop(proc, signal.SIGINT) == 0
    assert wait_for_database_stop(pgdata), "embedded Postgres still running after Ctrl-C"


def test_sigterm_stops_server_and_database(server_dir):
    state = server_dir("sigterm")
    proc, _, log = start_server(state)
    try:
        assert (state / "pgdata" / "postmaster.pid").exists()
        assert stop(proc, signal.SIGTERM) == 0
        assert wait_for_database_stop(state / "pgdata"), "embedded Postgres still running after SIGTERM"
    finally:
        stop(proc, signal.SIGKILL)
        log.close()
