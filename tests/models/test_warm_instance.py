"""A chat instance as Cloud Functions runs it (functions-framework: gunicorn's master
imports the module, a forked worker serves): the worker loads the models, connects to
the database and builds the LLM client before any request arrives (shared/warm_up.py),
and its first turn is answered by the warmed models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from local.launcher import stop_process_group
from local.loopback import free_port
from tests.published import Published

REPO = Path(__file__).resolve().parents[2]
STEPS = ("models", "database", "llm:chat")


def _warm_up_lines(log: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            message = json.loads(line).get("message", "")
        except ValueError:
            continue
        for step in STEPS:
            if message.startswith(f"warm-up of {step} "):
                found[step] = message
    return found


def test_a_forked_chat_worker_warms_up_before_its_first_request(
    demo_course: Any, published: Published, bearer: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SERVED_MODELS", "WARM_START")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": demo_course.url.render_as_string(hide_password=False),
            "DB_VECTOR_SELFTEST": "false",
            "LLM_PROVIDERS": "offline",
            "LOG_LEVEL": "INFO",
            "WORKERS": "1",
            "THREADS": "2",
        }
    )
    log = tmp_path / "instance.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target=chat",
                "--source=functions/chat/main.py",
                "--host=127.0.0.1",
                f"--port={port}",
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while len(_warm_up_lines(log)) < len(STEPS) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = _warm_up_lines(log)
        assert set(lines) == set(STEPS), log.read_text()[-3000:]
        assert all(" done in " in message for message in lines.values()), lines

        reply = requests.post(
            f"http://127.0.0.1:{port}/",
            json={"message": "how does a for loop work?"},
            headers=bearer("warm-student"),
            timeout=60,
        )
        assert reply.status_code == 200, reply.text[:500]
        used = reply.json()["model_versions"]
        assert used["models"] == published.version and used["encoder"] is not None
        one_pass = "encoder_intent" in published.manifest["models"]  # the encoder's intent head
        assert used["intent"].startswith("intent-head@" if one_pass else "intent-model@"), used
    finally:
        stop_process_group(proc)
