"""What the router's response check costs: validating a success body against its
route's response model (shared/http/router.py: `_check_response`), which runs on every
2xx JSON answer, in the cloud too (there a mismatch is only a warning).

    .venv/bin/python benchmarks/bench_response_check.py [--repeat 2000]

Bodies are shaped like the real ones (a chat turn with four sources; the attempts list
at its 500-row maximum; the mastery of 13 topics), with UUID and datetime objects as the
handlers return them. Prints microseconds per check (median of the repeats) beside the
cost of the JSON encoding every answer pays anyway, for scale.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def function_module(name: str) -> Any:
    path = REPO / "functions" / name / "main.py"
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def bodies() -> dict[str, tuple[type, dict[str, Any]]]:
    chat, grading, prediction = function_module("chat"), function_module("grading"), function_module("prediction")
    now = datetime.now(UTC)
    usage = {
        "provider": "offline",
        "model": "offline-composer-1",
        "tokens_in": None,
        "tokens_out": None,
        "cost_usd": None,
        "latency_ms": 0.5,
        "attempts": 1,
        "fallbacks": 0,
        "offline": True,
    }
    turn = {
        "intent": "concept_explanation",
        "confidence": 0.99,
        "is_confused": False,
        "needs_rephrase": False,
        "rephrase_hint": None,
        "mastery": 0.2,
        "suggestion": "Review the basics of Loops before moving on.",
        "sources": [
            {"node_id": f"py-loop-0{i}", "title": "Nested loops", "topic_id": "py-loops", "snippet": "x" * 300}
            for i in range(4)
        ],
        "session_id": uuid.uuid4(),
        "topic_id": "py-loops",
        "request_id": "b9c3e849583c49778717dd99cffe85fd",
        "reply": "y" * 1500,
        "interaction_id": uuid.uuid4(),
        "provider": "offline",
        "llm": usage,
        "model_versions": {
            "models": "v4",
            "encoder": "minilm",
            "intent": "intent-model@v4",
            "confusion": "confusion-model@v4",
            "llm": "offline/offline-composer-1",
        },
        "timings_ms": {k: 1.0 for k in ("encode", "intent", "retrieval", "prompt", "generate", "total")},
        "degraded": [],
    }
    attempt = {
        "question_id": "q-mcq",
        "topic_id": "t-ops",
        "difficulty": 2,
        "status": "completed",
        "predicted_correct": 0.5,
        "predicted_seconds": 30.0,
        "predictor": "network",
        "correct": True,
        "score": 10.0,
        "verdict": "correct",
        "feedback": "Correct. // is floor division.",
        "grader": "mcq",
        "time_seconds": 5.0,
        "created_at": now,
        "completed_at": now,
    }
    attempts = {
        "user_id": "alice",
        "attempts": [{"id": uuid.uuid4(), **attempt} for _ in range(500)],
        "request_id": "r" * 32,
    }
    mastery = {
        "user_id": "alice",
        "mastery": [
            {
                "topic_id": f"t-{i}",
                "title": "Loops",
                "course_id": "intro-python",
                "p_mastery": 0.2,
                "n_updates": 1,
                "updated_at": now,
                "tasks_completed": 1,
                "tasks_correct": 0,
            }
            for i in range(13)
        ],
        "request_id": "r" * 32,
    }
    return {
        "chat turn (POST /api/chat)": (chat.ChatReply, turn),
        "500 attempts (GET /api/grading/attempts?limit=500)": (grading.Attempts, attempts),
        "13 topics' mastery (GET /api/prediction/mastery)": (prediction.Mastery, mastery),
    }


def median_us(fn: Any, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    rows = []
    for name, (model, body) in bodies().items():
        model.model_validate(body)  # warm up (and prove the body fits)
        check = median_us(lambda m=model, b=body: m.model_validate(b), args.repeat)
        encode = median_us(lambda b=body: json.dumps(to_jsonable_python(b), ensure_ascii=False), args.repeat)
        rows.append({"body": name, "check_us": round(check, 1), "json_encode_us": round(encode, 1)})
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
