"""A short load test against the local stack (the full 60 s run is a documented command:
`.venv/bin/python benchmarks/load_test.py`, figures in docs/drills.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.drills.conftest import STACK_PROJECT

REPO = Path(__file__).resolve().parents[2]
LOAD_SECONDS = 8


def test_load_smoke_no_errors_and_every_acknowledged_write_stored(local_stack, tmp_path):
    out = tmp_path / "load.json"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "load_test.py"),
        *("--duration", str(LOAD_SECONDS), "--students", "4", "--json", str(out)),
        *("--base", local_stack["base"], "--state", str(local_stack["state"]), "--pid", str(local_stack["proc"].pid)),
        *("--project", STACK_PROJECT),
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=LOAD_SECONDS + 120)
    assert out.exists(), done.stderr[-3000:]
    result = json.loads(out.read_text())
    print("load summary:", json.dumps({k: v for k, v in result.items() if k != "errors"}))
    assert result["error_rate"] == 0, result["errors"]
    assert set(result["routes"]) == {"POST /api/chat", "POST /api/prediction", "POST /api/grading"}
    assert all(route["requests"] > 0 for route in result["routes"].values())
    writes = result["writes"]
    assert writes["chat_turns"]["acknowledged"] == writes["chat_turns"]["interactions_in_db"] > 0
    assert writes["predictions"]["acknowledged"] == writes["predictions"]["in_db"] > 0
    assert writes["gradings"]["acknowledged"] == writes["gradings"]["graded_in_db"] > 0
    assert writes["all_present"] and done.returncode == 0
    assert 0 < result["peak_rss_mb"]["server"] < 1536  # the seeds' cap per instance
