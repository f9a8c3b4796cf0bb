"""The serving worker's warm-up (shared/warm_up.py): what a function declares runs once,
in background threads, in the forked worker and not in the process that imported it;
a failing step is logged and leaves the work to the first request; WARM_START=0 is off."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import warm_up
from shared.config import reset_settings_cache

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture()
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Declarations of this test only; each step records the thread that ran it."""
    ran: dict[str, list[str]] = {"models": [], "database": [], "llm": []}
    monkeypatch.setattr(warm_up, "_lanes", {"models": [], "services": []})
    monkeypatch.setattr(warm_up, "_started_in", None)
    monkeypatch.setattr(warm_up, "_load_models", lambda: ran["models"].append(threading.current_thread().name))
    monkeypatch.setattr(warm_up, "_connect_database", lambda: ran["database"].append(threading.current_thread().name))
    monkeypatch.setattr(warm_up, "_build_llm_client", lambda task: ran["llm"].append(task))
    reset_settings_cache()
    yield ran
    reset_settings_cache()


def _join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_declared_work_runs_once_in_two_background_lanes(fresh: dict[str, list[str]]) -> None:
    warm_up.when_serving(models=True, database=True, llm_task="chat")
    warm_up.when_serving(database=True)  # a second function in the same process: merged
    threads = warm_up.start()
    _join(threads)
    assert sorted(t.name for t in threads) == ["warm-up-models", "warm-up-services"]
    assert fresh == {"models": ["warm-up-models"], "database": ["warm-up-services"], "llm": ["chat"]}
    assert warm_up.start() == []  # once per process
    assert fresh["database"] == ["warm-up-services"]


def test_a_failing_step_is_logged_and_the_next_one_still_runs(
    fresh: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(warm_up, "_connect_database", broken)
    warm_up.when_serving(database=True, llm_task="chat")
    with caplog.at_level(logging.WARNING, logger="shared.warm_up"):
        _join(warm_up.start())
    assert fresh["llm"] == ["chat"]
    assert "warm-up of database failed; the first request will do it" in caplog.text


def test_warm_start_off_runs_nothing(fresh: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARM_START", "0")
    reset_settings_cache()
    warm_up.when_serving(models=True, database=True, llm_task="chat")
    assert warm_up.start() == []
    assert fresh == {"models": [], "database": [], "llm": []}


FORKING_WORKER = """
import os, sys, threading
from shared import warm_up
out = sys.argv[1]
warm_up._connect_database = lambda: open(os.path.join(out, f"warmed-{os.getpid()}"), "w").close()
warm_up.when_serving(database=True)  # at import, as a function's module does in gunicorn's master
pid = os.fork()  # gunicorn's worker
if pid == 0:
    for thread in threading.enumerate():
        if thread.name.startswith("warm-up-"):
            thread.join(30)
    os._exit(0)
os.waitpid(pid, 0)
print(pid)
"""


def test_the_work_starts_in_the_forked_worker_not_in_the_importing_process(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", FORKING_WORKER, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "WARM_START"}, "PYTHONPATH": str(REPO)},
    )
    assert run.returncode == 0, run.stderr
    child = int(run.stdout.strip())
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"warmed-{child}"]
