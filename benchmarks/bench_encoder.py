"""Encoder benchmark: the served INT8 ONNX MiniLM against sentence-transformers FP32 (PyTorch).

    .venv-train/bin/python benchmarks/bench_encoder.py [--threads 1] [--queries 300]

Each back end runs in its own fresh child process, one after the other, so cold start
and peak RSS are that back end's alone and the two never compete for the CPU:
- cold start: from the child's first line (before importing numpy/onnxruntime/torch) to
  the first embedding returned, including loading and checksum-verifying the published
  version (ONNX) or loading the weights (PyTorch); interpreter start-up itself excluded;
- single query: latency of `embed([q])` over distinct student-style queries (p50/p95),
  wall clock and the calling thread's CPU time (with one intra-op thread both back ends
  compute on the calling thread, so CPU time is the latency without other processes'
  contention for the cores: quote it when the machine is shared);
- batch-64 throughput: texts per second over batches of 64 distinct texts;
- peak RSS: the child's ru_maxrss at the end.
A third child loads every published model (a whole function instance) and reports its
cold start and peak RSS against the budgets in DESIGN.md (1.5 s, 400 MB).
Both use the same thread count (default 1: a Cloud Function instance with one vCPU).
Queries come from CLINC150 (real user utterances) when ../shared/data is present, else
from a built-in list. Needs a published version (`python -m model_export build`).
"""

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FALLBACK_QUERIES = [
    "how do for loops work in python",
    "why is my loop never ending",
    "quiz me on recursion",
    "summarise yesterday's lesson on sorting",
    "what's a hash map",
    "my code says index out of range",
    "give me an interview question on graphs",
    "that answer was not helpful",
    "what is big o notation",
    "explain closures in javascript",
]


def load_queries(n: int) -> list[str]:
    """n distinct realistic queries (CLINC150 val+train utterances if available)."""
    data = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))
    texts: list[str] = []
    for split in ("val", "train"):
        path = data / "clinc150" / f"{split}.json"
        if path.is_file():
            texts += [t for t, _ in json.loads(path.read_text())[split]]
    if not texts:
        texts = [f"{q} (variant {i})" for i in range(n) for q in FALLBACK_QUERIES]
    return list(dict.fromkeys(texts))[:n]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def whole_registry(threads: int, store: str | None) -> dict:
    """Cold start and RSS of a function instance that loads every published model."""
    os.environ["ONNX_THREADS"] = str(threads)
    sys.path.insert(0, str(REPO))
    from shared.models.registry import ModelRegistry

    registry = ModelRegistry(store, ttl_s=3600)
    vector = registry.get("encoder").embed(["how do for loops work?"])
    cold = time.perf_counter() - _T0
    assert vector.shape == (1, 384)
    return {
        "version": registry.version,
        "models": sorted(registry.loaded.models),
        "unavailable": registry.loaded.errors,
        "cold_start_s": cold,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def child(backend: str, threads: int, n_queries: int, n_batches: int, store: str | None) -> dict:
    """Measure one back end in this (fresh) process; return the numbers."""
    if backend == "registry":
        return whole_registry(threads, store)
    queries = load_queries(n_queries + 64 * n_batches + 1)
    first, singles = queries[0], queries[1 : n_queries + 1]
    batch_texts = queries[n_queries + 1 :]
    if backend == "onnx":
        os.environ["ONNX_THREADS"] = str(threads)
        sys.path.insert(0, str(REPO))
        from shared.models.registry import ModelRegistry

        registry = ModelRegistry(store, ttl_s=3600, classes={"encoder": "shared.models.encoder:EncoderModel"})
        encoder = registry.get("encoder")
        embed = encoder.embed
        label = f"INT8 ONNX ({registry.version}, onnxruntime)"
    else:
        import torch
        from sentence_transformers import SentenceTransformer

        sys.path.insert(0, str(REPO))
        from model_export.base_model import minilm_dir

        torch.set_num_threads(threads)
        model = SentenceTransformer(str(minilm_dir()), device="cpu")

        def embed(texts):
            return model.encode(list(texts), batch_size=64, normalize_embeddings=True, convert_to_numpy=True)

        label = f"FP32 PyTorch (sentence-transformers, torch {torch.__version__})"
    vector = embed([first])
    cold = time.perf_counter() - _T0
    assert vector.shape == (1, 384), vector.shape
    for q in singles[:10]:  # warm-up
        embed([q])
    latencies, cpu = [], []
    for q in singles:
        start, start_cpu = time.perf_counter(), time.thread_time()
        embed([q])
        latencies.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    start = time.perf_counter()
    done = 0
    for i in range(n_batches):
        chunk = batch_texts[i * 64 : (i + 1) * 64]
        done += len(embed(chunk))
    throughput = done / (time.perf_counter() - start)
    return {
        "backend": label,
        "threads": threads,
        "cold_start_s": cold,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "mean_ms": sum(latencies) / len(latencies),
        "cpu_p50_ms": percentile(cpu, 50),
        "cpu_p95_ms": percentile(cpu, 95),
        "queries": len(latencies),
        "batch64_texts_per_s": throughput,
        "batches": n_batches,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--store", default=None, help="model store (default: settings)")
    parser.add_argument("--child", choices=["onnx", "torch", "registry"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.child, args.threads, args.queries, args.batches, args.store)
        print("RESULT " + json.dumps(result))
        return
    env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    results = {}
    for backend in ("onnx", "torch", "registry"):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            backend,
            "--threads",
            str(args.threads),
            "--queries",
            str(args.queries),
            "--batches",
            str(args.batches),
        ]
        if args.store:
            cmd += ["--store", args.store]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
        if out.returncode != 0:
            sys.exit(f"{backend} child failed:\n{out.stderr[-3000:]}")
        line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")][-1]
        results[backend] = json.loads(line[len("RESULT ") :])
    onnx, torch_ = results["onnx"], results["torch"]
    # (title, key, format, higher is better)
    rows = [
        ("cold start to first embedding (s)", "cold_start_s", "{:.2f}", False),
        ("single query p50 (ms)", "p50_ms", "{:.2f}", False),
        ("single query p95 (ms)", "p95_ms", "{:.2f}", False),
        ("single query CPU time p50 (ms)", "cpu_p50_ms", "{:.2f}", False),
        ("single query CPU time p95 (ms)", "cpu_p95_ms", "{:.2f}", False),
        ("batch-64 throughput (texts/s)", "batch64_texts_per_s", "{:.0f}", True),
        ("peak RSS (MB)", "peak_rss_mb", "{:.0f}", False),
    ]
    print(
        f"encoder benchmark, {args.threads} thread(s), {onnx['queries']} single queries, "
        f"{onnx['batches']} batches of 64"
    )
    print(f"  A = {onnx['backend']}\n  B = {torch_['backend']}")
    print(f"{'metric':38s} {'A: INT8 ONNX':>14s} {'B: FP32 torch':>14s} {'A better by':>12s}")
    for title, key, fmt, higher_better in rows:
        a, b = onnx[key], torch_[key]
        advantage = a / b if higher_better else b / a
        print(f"{title:38s} {fmt.format(a):>14s} {fmt.format(b):>14s} {advantage:>11.1f}x")
    print(
        f"goal p95 >= 5x better: wall {torch_['p95_ms'] / onnx['p95_ms']:.1f}x "
        f"({'met' if torch_['p95_ms'] / onnx['p95_ms'] >= 5 else 'NOT met'}), CPU time "
        f"{torch_['cpu_p95_ms'] / onnx['cpu_p95_ms']:.1f}x "
        f"({'met' if torch_['cpu_p95_ms'] / onnx['cpu_p95_ms'] >= 5 else 'NOT met'}); "
        f"goal RSS <= 1/3: {onnx['peak_rss_mb'] / torch_['peak_rss_mb']:.2f} "
        f"({'met' if onnx['peak_rss_mb'] * 3 <= torch_['peak_rss_mb'] else 'NOT met'})"
    )
    whole = results["registry"]
    print(
        f"every model of {whole['version']} ({', '.join(whole['models'])}): cold start "
        f"{whole['cold_start_s']:.2f} s (imports + verify + load + first embedding), "
        f"peak RSS {whole['peak_rss_mb']:.0f} MB"
        + (f"; unavailable: {whole['unavailable']}" if whole["unavailable"] else "")
    )
    print("JSON " + json.dumps(results))


if __name__ == "__main__":
    main()
