"""What the LLM router itself costs, apart from the model's own latency.

    .venv/bin/python benchmarks/bench_llm_router.py [--calls 300]

- import: `import shared.llm` in a fresh process, and the hosted providers' modules in
  another (httpx included, which a function has imported already for firebase_admin;
  paid once per instance, when the router is built; no vendor SDK: rest.py);
- offline provider: p50/p95 of a whole `generate` and of a drained `stream` for a
  grounded chat turn (the local stack's reply path);
- Vertex path: p50/p95 of `generate` through the Vertex provider against a loopback stub
  answering instantly, i.e. router + client + HTTP overhead per call; and one fallback
  drill (stub answers 503) to show what an outage costs before the offline answer
  when retries back off for real (retry waits are the configured ones).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GEMINI_OK = json.dumps(
    {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": "A list keeps items in order."}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 8, "totalTokenCount": 128},
    }
).encode()
GEMINI_503 = json.dumps({"error": {"code": 503, "message": "unavailable", "status": "UNAVAILABLE"}}).encode()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> str:
    return (
        f"p50 {percentile(values_ms, 0.5):8.3f} ms   p95 {percentile(values_ms, 0.95):8.3f} ms   "
        f"mean {statistics.fmean(values_ms):8.3f} ms   (n={len(values_ms)})"
    )


def import_time(code: str) -> float:
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", f"import time; t=time.perf_counter(); {code}; print((time.perf_counter()-t)*1000)"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        )
        runs.append(float(out.stdout.strip()))
    return min(runs)


class QuietHandler(BaseHTTPRequestHandler):
    """A loopback stub's handler: HTTP/1.1, no Nagle delay, no access log."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args: Any) -> None:
        pass


def stub_handler(status_body: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    """Answers every POST with `status_body["reply"]` (status, body), changeable mid-run."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, body = status_body["reply"]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    from google.oauth2.credentials import Credentials

    from local.loopback import serve_http
    from shared.llm import Grounding, LLMRouter, Prompt, Source
    from shared.llm.providers.offline import OfflineProvider
    from shared.llm.providers.vertex import VertexProvider

    providers = (
        "import shared.llm.providers.vertex, shared.llm.providers.openai_api, shared.llm.providers.anthropic_api"
    )
    print(f"import shared.llm:                   {import_time('import shared.llm'):8.1f} ms")
    print(f"import the hosted providers (httpx): {import_time(providers):8.1f} ms")

    sources = tuple(Source(f"n{i}", f"Title {i}", "A list keeps items in order. " * 12) for i in range(5))
    prompt = Prompt.simple(
        "You are a tutor.",
        "How do lists work?",
        grounding=Grounding(
            "concept_explanation", "How do lists work?", sources, is_confused=True, suggestion="Try the exercise."
        ),
    )
    offline = LLMRouter({"offline": OfflineProvider()}, ["offline"])
    for label, call in (
        ("offline generate", lambda: offline.generate("chat", prompt)),
        ("offline stream (drained)", lambda: list(offline.stream("chat", prompt))),
    ):
        timings = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            call()
            timings.append((time.perf_counter() - t0) * 1000)
        print(f"{label:28s} {summary(timings)}")

    state = {"reply": (200, GEMINI_OK)}
    with serve_http(stub_handler(state)) as url:
        vertex = VertexProvider("bench", "us-central1", base_url=url, credentials=Credentials(token="t"))
        router = LLMRouter(
            {"vertex": vertex, "offline": OfflineProvider()},
            ["vertex", "offline"],
            {"vertex": {"default": "gemini-2.5-flash"}},
        )
        router.generate("chat", prompt)  # client construction + connection set-up
        timings = []
        for _ in range(args.calls):
            t0 = time.perf_counter()
            generation = router.generate("chat", prompt)
            timings.append((time.perf_counter() - t0) * 1000)
        assert generation.provider == "vertex"
        print(f"{'vertex generate (stub)':28s} {summary(timings)}")

        state["reply"] = (503, GEMINI_503)
        drill = LLMRouter(
            {"vertex": vertex, "offline": OfflineProvider()},
            ["vertex", "offline"],
            {"vertex": {"default": "gemini-2.5-flash"}},
            max_attempts=3,
            retry_initial_s=0.5,
            retry_max_s=8.0,
        )
        t0 = time.perf_counter()
        generation = drill.generate("chat", prompt)
        print(
            f"{'503 outage → offline':28s} {(time.perf_counter() - t0) * 1000:8.1f} ms "
            f"(3 tries with backoff, then fallback; provider={generation.provider})"
        )


if __name__ == "__main__":
    main()
