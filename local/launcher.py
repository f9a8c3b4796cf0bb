"""The local stack as a child process: `python -m local serve` on a free loopback port
with its own state folder, started, waited for and stopped the way a person would.

One home for what the end-to-end tests, the browser tests, the drills and the load
benchmark all need (benchmarks/ imports it too, so it lives here, not under tests/).
Stopping sends the signal to the whole process group, so the embedded Postgres the
server started goes down with it, and falls back to SIGKILL after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

from local.loopback import free_port

REPO = Path(__file__).resolve().parent.parent


class StackError(RuntimeError):
    """The stack exited early or never became healthy; the message ends with its log."""


def new_state_dir(prefix: str) -> Path:
    """A fresh folder for a stack's STATE_DIR, world-traversable (mode 0755).

    Not pytest's tmp_path: as root the embedded server runs as its own system user, which
    must traverse to its data directory, and every pytest that starts on the machine
    resets its temporary root (/tmp/pytest-of-<user>) to mode 0700."""
    path = Path(tempfile.mkdtemp(prefix=f"cc-{prefix}-"))
    path.chmod(0o755)
    return path


def stop_process_group(
    proc: subprocess.Popen,
    sig: int = signal.SIGTERM,
    grace_s: float = 20,
    on_timeout: Callable[[], None] | None = None,
) -> int:
    """Signal the group of a child started with `start_new_session=True` (the child and
    whatever it started: a server's workers, an emulator's JVM), wait, SIGKILL the group
    after `grace_s`; the child's exit code. `on_timeout` runs before that SIGKILL (to ask
    the child why it is still there)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=grace_s)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            if on_timeout is not None:
                on_timeout()
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return int(proc.returncode)


@dataclass
class LocalStack:
    """A running `python -m local serve`."""

    proc: subprocess.Popen[bytes]
    base: str
    state: Path
    log: IO[str]

    @property
    def pgdata(self) -> Path:
        return self.state / "pgdata"

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.state / "server.log").read_text(errors="replace")[-chars:]

    def stop(self, sig: int = signal.SIGINT, grace_s: float = 60) -> int:
        """Signal the process group (SIGINT = Ctrl-C), wait, SIGKILL after `grace_s`;
        the server's exit code. The bounds are generous because a clean stop includes
        Postgres's shutdown, which takes tens of seconds on a loaded machine."""
        code = stop_process_group(self.proc, sig, grace_s, on_timeout=self._dump_threads)
        if not self.log.closed:
            self.log.close()
        return code

    def _dump_threads(self) -> None:
        """A server that outlived its grace writes every thread's stack to its log
        (`python -m local serve` registers faulthandler on SIGUSR1) before it is killed."""
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
            time.sleep(1)
        except ProcessLookupError:
            pass

    def database_stopped(self, timeout_s: float = 30) -> bool:
        """Whether the embedded Postgres has removed its pid file within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while (self.pgdata / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        return not (self.pgdata / "postmaster.pid").exists()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_stack(state: Path, env: Mapping[str, str] | None = None, *, health_timeout_s: float = 120) -> LocalStack:
    """Start the stack with STATE_DIR=`state` (plus `env` over this process's environment,
    never DATABASE_URL: the stack runs its own embedded Postgres) and return it once
    /api/health answers 200. Raises StackError, with the server's log, otherwise."""
    full_env = {**os.environ, "STATE_DIR": str(state), **(env or {})}
    full_env.pop("DATABASE_URL", None)
    port = free_port()
    log = open(state / "server.log", "w")  # the server writes it until stop()
    proc = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", str(port)],
        cwd=REPO,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stop() reaches Postgres too
    )
    stack = LocalStack(proc=proc, base=f"http://127.0.0.1:{port}", state=state, log=log)
    deadline = time.monotonic() + health_timeout_s
    while True:
        if proc.poll() is not None:
            tail = stack.log_tail()
            stack.stop()
            raise StackError(f"the local stack exited early (code {proc.returncode}):\n{tail}")
        try:
            if requests.get(f"{stack.base}/api/health", timeout=2).status_code == 200:
                return stack
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stack.stop()
            raise StackError(f"the local stack was not healthy within {health_timeout_s:.0f} s:\n{stack.log_tail()}")
        time.sleep(0.3)
