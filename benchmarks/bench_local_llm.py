"""Latency of the local-model providers on this machine.

    .venv/bin/python benchmarks/bench_local_llm.py [--calls 200] [--tokens 64]
    <venv with llama-cpp-python>/bin/python benchmarks/bench_local_llm.py --gguf FILE [--calls 5]

Without --gguf: the `local` provider (OpenAI-compatible, over httpx) against a loopback server
speaking llama.cpp's `/v1/chat/completions` that answers instantly, i.e. what router +
client + HTTP add to a local model's own time: p50/p95 of `generate`, and of a drained
`stream` of --tokens SSE chunks (time to the first delta, and in all), with and without
the streaming deadline (the deadline reads the stream on a worker thread).

With --gguf: the in-process `gguf` provider on a real model file: load time, then
p50/p95 of a `generate` of at most --tokens tokens, and tokens per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench_llm_router import QuietHandler, summary  # noqa: E402 - the benchmarks' shared helpers

from local.loopback import serve_http  # noqa: E402

MODEL = "llama-3.2-1b-instruct-q4_k_m"


def completion(text: str) -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 120, "completion_tokens": 8, "total_tokens": 128},
        }
    ).encode()


def sse_frames(tokens: int) -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": MODEL}
    frames = [
        {**base, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]}
        for i in range(tokens)
    ]
    frames.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    frames.append({**base, "choices": [], "usage": {"prompt_tokens": 120, "completion_tokens": tokens}})
    return [b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames] + [b"data: [DONE]\n\n"]


def handler(tokens: int) -> type[QuietHandler]:
    """llama.cpp's `/v1/chat/completions`, answering at once (whole, or `tokens` SSE chunks)."""
    body, frames = completion("A list keeps items in order."), sse_frames(tokens)

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if request.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for frame in frames:
                    self.wfile.write(frame)
                    self.wfile.flush()
                self.close_connection = True
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


def timed_stream(router: Any, prompt: Any) -> tuple[float, float]:
    t0 = time.perf_counter()
    first = None
    for item in router.stream("chat", prompt):
        if first is None and isinstance(item, str):
            first = time.perf_counter()
    end = time.perf_counter()
    return ((first or end) - t0) * 1000, (end - t0) * 1000


def bench_endpoint(calls: int, tokens: int) -> None:
    from shared.llm import LLMRouter, Prompt
    from shared.llm.providers.local_openai import LocalOpenAIProvider
    from shared.llm.providers.offline import OfflineProvider

    prompt = Prompt.simple("You are a tutor.", "How do lists work? " * 20)
    with serve_http(handler(tokens)) as base:
        url = f"{base}/v1"
        for label, deadline in (("no deadline", None), ("deadline 8 s", 8.0)):
            router = LLMRouter(
                {"local": LocalOpenAIProvider(url), "offline": OfflineProvider()},
                ["local", "offline"],
                {"local": {"default": MODEL}},
                deadline_s=deadline,
            )
            router.generate("chat", prompt)  # client construction + connection set-up
            if label == "no deadline":
                timings = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    generation = router.generate("chat", prompt)
                    timings.append((time.perf_counter() - t0) * 1000)
                assert generation.provider == "local" and generation.cost_usd == 0.0
                print(f"{'local generate (stub)':44s} {summary(timings)}")
            firsts, totals = [], []
            for _ in range(calls):
                first, total = timed_stream(router, prompt)
                firsts.append(first)
                totals.append(total)
            print(f"{f'local stream, first delta ({label})':44s} {summary(firsts)}")
            print(f"{f'local stream, {tokens} tokens ({label})':44s} {summary(totals)}")


def bench_gguf(path: Path, calls: int, tokens: int) -> None:
    from shared.llm import LLMRouter, Prompt
    from shared.llm.providers.gguf import GGUFProvider
    from shared.llm.providers.offline import OfflineProvider

    provider = GGUFProvider(path, n_ctx=512, max_output_tokens=tokens)
    t0 = time.perf_counter()
    _ = provider.llama
    print(f"gguf load {path.name}: {(time.perf_counter() - t0) * 1000:.1f} ms")
    router = LLMRouter({"gguf": provider, "offline": OfflineProvider()}, ["gguf", "offline"], timeout_s=600)
    prompt = Prompt.simple("You are a tutor.", "What is a list?", temperature=0.0)
    timings, rates = [], []
    for _ in range(calls):
        t0 = time.perf_counter()
        generation = router.generate("chat", prompt)
        elapsed = time.perf_counter() - t0
        assert generation.provider == "gguf", generation.attempts
        timings.append(elapsed * 1000)
        rates.append((generation.tokens_out or 0) / elapsed)
    print(f"{'gguf generate':44s} {summary(timings)}")
    usage = f"tokens_in {generation.tokens_in}, out {generation.tokens_out}"
    print(f"gguf tokens/s: mean {statistics.fmean(rates):.1f} ({usage})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--gguf", type=Path, default=None, help="a .gguf file (needs llama-cpp-python)")
    args = parser.parse_args()
    if args.gguf is not None:
        bench_gguf(args.gguf, args.calls, args.tokens)
    else:
        bench_endpoint(args.calls, args.tokens)


if __name__ == "__main__":
    main()
