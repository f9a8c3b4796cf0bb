"""One function instance as Cloud Functions gen2 runs it: cold start, peak memory, and
chat throughput at the configured concurrency with the LLM stubbed at a fixed latency.

    .venv/bin/python benchmarks/bench_function_instance.py [--functions chat grading prediction feedback]
        [--runs 1] [--duration 30] [--concurrency 8] [--llm-ms 500]

Each function is started as the platform starts it: `functions-framework --target <name>`
(gunicorn, one worker, THREADS = the concurrency; terraform's
`max_instance_request_concurrency` default is 8) in a fresh process, against the
embedded Postgres (a database with the demo course, nodes embedded by the published
encoder) and the published models. Reported per function:

- cold start: from `Popen` to the first answered real request (a chat turn, a
  prediction, a grading, the review queue), i.e. interpreter start, imports, model and
  pool set-up, and the first request itself;
- CPU seconds the instance used until then (user + system, gunicorn's master and
  worker): unlike the wall time it hardly moves when another process shares the CPUs,
  so it is the figure to compare across runs on a busy machine;
- peak RSS of the instance (sampled every 50 ms until it stops).

With `--runs N` every function is cold-started N times (interleaved) and the median of
each figure is reported next to the runs. For chat a breakdown follows, each run in a
fresh interpreter without gunicorn (the same environment): importing
`functions/chat/main.py`, loading the model registry, and the first turn through
functions-framework's app (first database connection included); the rest of the cold
start is the interpreter, functions-framework and gunicorn starting. The load average
is printed before and after: the machine may be shared.

Then, for chat: `--concurrency` simulated students posting chat turns for `--duration`
seconds; the LLM is the OpenAI provider pointed at a loopback stub that answers after
`--llm-ms` ms, so the figure is the instance's own capacity around a slow model:
requests/s, latency p50/p95, errors.

The instances inherit this process's environment: they warm up as the cloud's do
(`shared/warm_up.py`, chat only); `WARM_START=0 .venv/bin/python benchmarks/...` measures
them without.

DB_VECTOR_SELFTEST is off in the instances, as it is on Cloud SQL (the self-test runs
once per process and database against the embedded server only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("STATE_DIR", str(REPO / ".state" / "bench"))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from local.loopback import free_port, serve_http  # noqa: E402

PROJECT = "demo-bench-instance"
COMPLETION = {
    "id": "stub",
    "object": "chat.completion",
    "created": 0,
    "model": "stub-model",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "A stubbed tutor reply."}}
    ],
    "usage": {"prompt_tokens": 400, "completion_tokens": 60, "total_tokens": 460},
}


def llm_stub(latency_ms: float) -> type[BaseHTTPRequestHandler]:
    """An OpenAI-compatible endpoint answering every completion after `latency_ms`
    (served on loopback by `local.loopback.serve_http`)."""
    body = json.dumps(COMPLETION).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(latency_ms / 1000)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def prepare_database() -> tuple[str, dict[str, Any]]:
    """A database with the demo course (nodes embedded); its URL and ids to ask about."""
    from local.stack import DEMO_COURSE
    from shared.config import get_settings
    from shared.curriculum import load_course_file
    from shared.db.engine import create_engine, ensure_database
    from shared.db.migrate import upgrade
    from shared.embeddings.service import get_embedding_service

    settings = get_settings()
    base = create_engine(settings)
    server_url = base.url.set(database="postgres").render_as_string(hide_password=False)
    base.dispose()
    ensure_database(server_url, "bench_instance")
    url = sa.make_url(server_url).set(database="bench_instance").render_as_string(hide_password=False)
    engine = create_engine(settings.model_copy(update={"database_url": url}))
    upgrade(engine)
    service = get_embedding_service()
    with engine.begin() as conn:
        load_course_file(conn, DEMO_COURSE, embed=service.embed, embedding_model=service.model_name)
        question = conn.execute(
            sa.text("SELECT id, topic_id FROM questions WHERE kind = 'mcq' ORDER BY id LIMIT 1")
        ).one()
    engine.dispose()
    return url, {"question_id": question.id, "topic_id": question.topic_id}


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                rss = self.process.memory_info().rss
                rss += sum(c.memory_info().rss for c in self.process.children(recursive=True))
            except psutil.Error:
                return
            self.peak = max(self.peak, rss)
            time.sleep(0.05)


def instance_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its children so far."""
    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def first_request(name: str, ids: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None, bool]:
    """(method, path, body, admin) of the real request that ends the cold start."""
    return {
        "chat": ("POST", "/", {"message": "how does a for loop work?"}, False),
        "prediction": ("POST", "/", {"topic_id": ids["topic_id"], "difficulty": 2}, False),
        "grading": ("POST", "/", {"question_id": ids["question_id"], "answer": 0}, False),
        "feedback": ("GET", "/review-queue", None, True),
    }[name]


def start_instance(name: str, env: dict[str, str], concurrency: int) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            str(REPO / ".venv" / "bin" / "functions-framework"),
            f"--target={name}",
            f"--source={REPO / 'functions' / name / 'main.py'}",
            "--host=127.0.0.1",
            f"--port={port}",
        ],
        cwd=REPO,
        env={**env, "THREADS": str(concurrency), "WORKERS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}", started


def stop_instance(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cold_start(name: str, env: dict[str, str], ids: dict[str, Any], tokens: dict[str, str], concurrency: int) -> dict:
    proc, base, started = start_instance(name, env, concurrency)
    rss = PeakRss(proc.pid)
    rss.start()
    method, path, body, admin = first_request(name, ids)
    headers = {"Authorization": f"Bearer {tokens['admin' if admin else 'student']}"}
    try:
        deadline = started + 120
        while True:
            try:
                response = requests.request(method, base + path, json=body, headers=headers, timeout=60)
                break
            except requests.ConnectionError:
                if time.perf_counter() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{name} did not start (exit {proc.poll()})") from None
                time.sleep(0.01)
        seconds = time.perf_counter() - started
        cpu = instance_cpu_s(proc.pid)
        if response.status_code != 200:
            raise SystemExit(f"{name}: first request answered {response.status_code}: {response.text[:300]}")
        time.sleep(0.3)
        out = {
            "cold_start_s": round(seconds, 2),
            "cpu_s": round(cpu, 2),
            "peak_rss_mb_after_first": round(rss.peak / 2**20),
        }
        if name == "chat":
            out["provider"] = response.json().get("provider")  # "openai": the stub answered
        return out
    finally:
        rss.running = False
        stop_instance(proc)


BREAKDOWN = """
import json, sys, time
t0, c0 = time.perf_counter(), time.process_time()
import functions.chat.main as main
t1, c1 = time.perf_counter(), time.process_time()
from shared.models.registry import get_registry
loaded = get_registry().loaded
t2, c2 = time.perf_counter(), time.process_time()
import functions_framework
app = functions_framework.create_app(target="chat", source=main.__file__)
t3, c3 = time.perf_counter(), time.process_time()
response = app.test_client().post("/", json={"message": "how does a for loop work?"},
                                  headers={"Authorization": "Bearer " + sys.argv[1]})
t4, c4 = time.perf_counter(), time.process_time()
assert response.status_code == 200, response.get_data(as_text=True)[:300]
print(json.dumps({
    "imports_s": round(t1 - t0, 3),
    "registry_s": round(t2 - t1, 3),
    "models": sorted(loaded.models) if loaded else [],
    "create_app_s": round(t3 - t2, 3),
    "first_request_s": round(t4 - t3, 3),
    "first_request_llm_s": round(response.get_json()["timings_ms"]["generate"] / 1000, 3),
    "imports_cpu_s": round(c1 - c0, 3),
    "registry_cpu_s": round(c2 - c1, 3),
    "first_request_cpu_s": round(c4 - c3, 3),
}))
"""


def chat_breakdown(env: dict[str, str], token: str) -> dict:
    """Where chat's cold start goes, in a fresh interpreter (see the module docstring)."""
    started = time.perf_counter()
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", BREAKDOWN, token],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"chat breakdown failed: {out.stderr[-1500:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = round(time.perf_counter() - started, 3)
    return result


def median(values: list[float]) -> float:
    return round(float(np.median(values)), 3)


def throughput(env: dict[str, str], token: str, concurrency: int, duration: float) -> dict:
    proc, base, _ = start_instance("chat", env, concurrency)
    rss = PeakRss(proc.pid)
    rss.start()
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    try:
        for _ in range(600):  # ready (and warm) once one turn is answered
            try:
                if requests.post(base + "/", json={"message": "warm up"}, headers=headers, timeout=60).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        end = time.perf_counter() + duration

        def student(i: int) -> None:
            session = requests.Session()
            turn = 0
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                try:
                    r = session.post(
                        base + "/", json={"message": f"why does my loop never stop? ({i}.{turn})"}, headers=headers
                    )
                    ok = r.status_code == 200
                except requests.RequestException:
                    ok = False
                with lock:
                    if ok:
                        latencies.append((time.perf_counter() - t0) * 1000)
                    else:
                        errors[0] += 1
                turn += 1

        t0 = time.perf_counter()
        threads = [threading.Thread(target=student, args=(i,)) for i in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
    finally:
        rss.running = False
        stop_instance(proc)
    values = np.asarray(latencies or [float("nan")])
    return {
        "concurrency": concurrency,
        "seconds": round(elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(float(np.percentile(values, 50)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "errors": errors[0],
        "peak_rss_mb": round(rss.peak / 2**20),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", nargs="+", default=["chat", "grading", "prediction", "feedback"])
    parser.add_argument("--runs", type=int, default=1, help="cold starts per function (median reported)")
    parser.add_argument("--duration", type=float, default=30.0, help="chat throughput seconds (0: skip)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--llm-ms", type=float, default=500.0)
    args = parser.parse_args()
    from local.tokens import mint_emulator_token
    from shared.logs import configure_logging

    configure_logging("WARNING")
    url, ids = prepare_database()
    with serve_http(llm_stub(args.llm_ms)) as stub_url:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "DATABASE_URL": url,
            "DB_VECTOR_SELFTEST": "false",
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
            "LLM_PROVIDERS": "openai,offline",
            "OPENAI_API_KEY": "stub-key",
            "OPENAI_BASE_URL": f"{stub_url}/v1",
            "RATE_LIMITS": "off",
            "LOG_LEVEL": "WARNING",
        }
        tokens = {
            "student": mint_emulator_token("bench-student", PROJECT),
            "admin": mint_emulator_token("bench-admin", PROJECT, admin=True),
        }
        results: dict[str, Any] = {"llm_ms": args.llm_ms, "load_average": os.getloadavg()}
        print(f"load average before: {results['load_average']}", file=sys.stderr)
        runs: dict[str, list[dict]] = {name: [] for name in args.functions}
        breakdowns: list[dict] = []
        for _ in range(args.runs):
            for name in args.functions:
                runs[name].append(cold_start(name, env, ids, tokens, args.concurrency))
                print(f"{name:<11} {runs[name][-1]}  load {os.getloadavg()[0]:.2f}", file=sys.stderr)
            if "chat" in args.functions:
                breakdowns.append(chat_breakdown(env, tokens["student"]))
                print(f"chat breakdown {breakdowns[-1]}  load {os.getloadavg()[0]:.2f}", file=sys.stderr)
        for name, measured in runs.items():
            results[name] = {
                **measured[-1],
                "cold_start_s": median([r["cold_start_s"] for r in measured]),
                "cpu_s": median([r["cpu_s"] for r in measured]),
                "peak_rss_mb_after_first": median([r["peak_rss_mb_after_first"] for r in measured]),
                "cold_start_runs_s": [r["cold_start_s"] for r in measured],
            }
        if breakdowns:
            results["chat_breakdown"] = {
                key: median([b[key] for b in breakdowns]) for key in breakdowns[0] if key != "models"
            } | {"models": breakdowns[-1]["models"], "runs": len(breakdowns)}
        print(f"load average after cold starts: {os.getloadavg()}", file=sys.stderr)
        for name in args.functions:
            row = results[name]
            print(
                f"MEDIAN {name:<11} cold start {row['cold_start_s']:.2f} s (runs {row['cold_start_runs_s']}), "
                f"CPU {row['cpu_s']:.2f} s, peak RSS {row['peak_rss_mb_after_first']:.0f} MB",
                file=sys.stderr,
            )
        if breakdowns:
            print(f"MEDIAN chat breakdown {results['chat_breakdown']}", file=sys.stderr)
        if "chat" in args.functions and args.duration > 0:
            results["chat_throughput"] = throughput(env, tokens["student"], args.concurrency, args.duration)
            print(f"chat throughput {results['chat_throughput']}", file=sys.stderr)
    results["load_average_after"] = os.getloadavg()
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
