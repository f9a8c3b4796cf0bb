"""Calibrate the chat's out-of-domain thresholds on real data (CLINC150 validation).

    .venv/bin/python benchmarks/calibrate_chat_grounding.py [--version-dir DIR] [--course FILE]

The intent model knows seven tutoring intents; it has never seen a request to a bank
or a travel agent, nor keyboard mashing, and its softmax is confident on them anyway.
CLINC150's validation split (3,000 in-scope + 100 out-of-scope queries, written by
real crowd workers for a voice assistant) is, for a programming and physics course,
3,100 real messages that are *not* about the course. Two thresholds are set on it:

- GROUNDED_SIMILARITY: the cosine similarity (INT8 MiniLM encoder) between a message
  and its closest course node at or above which the message counts as being about the
  course: the 99th percentile over CLINC150 val, i.e. at most 1% of real off-course
  queries pass for course questions.
- KNOWN_WORD_SHARE: below this share of words the intent tokenizer knows, a message is
  unreadable: the largest threshold that flags at most 0.5% of CLINC150 val (real
  queries, typos and slang included).

It prints both, and what they do: the share of CLINC150 val that the intent model files
under a tutoring intent it would act on (confidence >= 0.40), before and after the
out-of-domain rule of `shared.chat.grounding`, and, as a check on the other side, the
share of the course's own retrieval health queries and `DEMO_COURSE_QUESTIONS`
that count as grounded. Nothing here is tuned on the golden conversations or a test split.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("MODEL_STORE_URI", str(REPO / ".state" / "models"))

GROUNDED_PERCENTILE = 99.0
MAX_UNREADABLE_SHARE = 0.005
LEARNING = ("concept_explanation", "debugging_help", "interview_practice", "practice_quiz", "review_summary")


def clinc_val() -> list[str]:
    root = Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data")) / "clinc150"
    val = json.loads((root / "val.json").read_text())
    return [t for t, _ in val["val"]] + [t for t, _ in val["oos_val"]]


def version_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    store = Path(os.environ["MODEL_STORE_URI"])
    current = json.loads((store / "current.json").read_text())
    return store / current["version"]


def largest_threshold(values: np.ndarray, max_share: float) -> float:
    """The largest t such that the share of values strictly below t is at most max_share."""
    candidates = np.unique(values)
    ok = [t for t in candidates if (values < t).mean() <= max_share]
    return float(max(ok))


#: Questions a student of the demo course asks (its Python and mechanics topics), written for
#: this check; once the chat benchmark's queries, kept here when that benchmark moved to the
#: documentation corpus. The other side of the calibration: how many of them count as grounded.
DEMO_COURSE_QUESTIONS = [
    "how does a for loop work?",
    "why does my while loop never stop",
    "I get IndexError: list index out of range",
    "what is the difference between = and ==",
    "explain F = m a with an example",
    "quiz me on dictionaries",
    "summarize what we covered about functions",
    "I still don't get recursion",
    "why does my function return None",
    "what does range(1, 5) give",
    "KeyError when reading my dict",
    "how do I compute acceleration from velocity",
    "what is Newton's third law",
    "give me a practice problem on lists",
    "can you recap kinematics equations",
    "my code crashes with ZeroDivisionError",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version-dir", help="a model version folder (default: the current one in the store)")
    parser.add_argument("--course", default=str(REPO / "local" / "demo" / "course.json"))
    args = parser.parse_args()

    from shared.chat import grounding
    from shared.knowledge_text import node_text
    from shared.models.encoder import EncoderModel
    from shared.models.intent import IntentModel

    vdir = version_dir(args.version_dir)
    manifest = json.loads((vdir / "manifest.json").read_text()) if (vdir / "manifest.json").exists() else {}
    entries = manifest.get("models", {})
    intent = IntentModel(vdir, entries.get("intent", {"file": "intent.onnx"}))
    encoder = EncoderModel(vdir, entries.get("encoder", {"file": "encoder.onnx"}))
    course = json.loads(Path(args.course).read_text())
    nodes = encoder.embed([node_text(n["title"], n["content"]) for n in course["nodes"]])

    def best_similarity(texts: list[str]) -> np.ndarray:
        return (encoder.embed(texts) @ nodes.T).max(axis=1)

    queries = clinc_val()
    sims = best_similarity(queries)
    grounded_at = float(np.percentile(sims, GROUNDED_PERCENTILE))
    shares = np.array([intent.known_word_share(q) for q in queries])
    readable_at = largest_threshold(shares, MAX_UNREADABLE_SHARE)

    predictions = [p for i in range(0, len(queries), 64) for p in intent.predict(queries[i : i + 64])]
    labels = np.array([p.label for p in predictions])
    conf = np.array([p.confidence for p in predictions])
    acted = np.isin(labels, LEARNING) & (conf >= 0.40)
    # The served rule (first turn of a session, no topic yet): a tutoring intent needs course grounding.
    kept = acted & (sims >= grounding.GROUNDED_SIMILARITY) & (shares >= grounding.KNOWN_WORD_SHARE)

    health = json.loads((REPO / "local" / "demo" / "rag_health_queries.json").read_text())
    in_domain = [h["query"] for h in health] + DEMO_COURSE_QUESTIONS
    in_sims = best_similarity(in_domain)

    report = {
        "version": vdir.name,
        "clinc150_val_queries": len(queries),
        "GROUNDED_SIMILARITY (p99 of CLINC150 val best course similarity)": round(grounded_at, 3),
        "KNOWN_WORD_SHARE (flags <= 0.5% of CLINC150 val)": round(readable_at, 3),
        "clinc_unreadable_share_at_served_threshold": round(float((shares < grounding.KNOWN_WORD_SHARE).mean()), 4),
        "clinc_grounded_share_at_served_threshold": round(float((sims >= grounding.GROUNDED_SIMILARITY).mean()), 4),
        "clinc_tutoring_intent_acted_on_model_only": round(float(acted.mean()), 4),
        "clinc_tutoring_intent_acted_on_with_rule": round(float(kept.mean()), 4),
        "course_queries_grounded_share": round(float((in_sims >= grounding.GROUNDED_SIMILARITY).mean()), 4),
        "course_queries_not_grounded": [
            q for q, s in zip(in_domain, in_sims, strict=True) if s < grounding.GROUNDED_SIMILARITY
        ],
        "served_constants": {
            "GROUNDED_SIMILARITY": grounding.GROUNDED_SIMILARITY,
            "KNOWN_WORD_SHARE": grounding.KNOWN_WORD_SHARE,
        },
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
