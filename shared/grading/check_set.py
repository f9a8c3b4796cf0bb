"""The grading check set: hand-written answers to the demo course's short-answer questions.

`local/demo/grading_check_set.json` holds, for every short-answer question of
`local/demo/course.json`, answers a teacher would mark correct, partially correct, wrong,
off-topic, nonsense and non-answers. The score mapping in `score_mapping` is fitted on
the questions marked `fit` and checked on the `held_out` ones
(tests/grading/test_grading_check_set.py, benchmarks/bench_grading_check_set.py).

Used by tests and benchmarks only; nothing at request time reads it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.grading.contract import Grade, Question
from shared.grading.text import reference_answers

DEMO_DIR = Path(__file__).resolve().parent.parent.parent / "local" / "demo"
CHECK_SET = DEMO_DIR / "grading_check_set.json"
COURSE = DEMO_DIR / "course.json"

CLASSES = ("correct", "partial", "wrong", "wrong_fluent", "off_topic", "nonsense", "non_answer")
#: the classes the score mapping is fitted on (non-answers never reach a grader;
#: wrong_fluent is a stress test kept out of the fit)
FIT_CLASSES = ("correct", "partial", "wrong", "off_topic", "nonsense")
#: the classes that must score low (<= LOW_MAX): everything that is not an attempt at the answer
NONSENSE_CLASSES = ("off_topic", "nonsense", "non_answer")
PARTS = ("fit", "held_out")

# The thresholds the check set must meet (docs/grading.md explains the choice).
CORRECT_MEDIAN_MIN = 8.0
#: reported, not required: the share of correct answers that get the verdict "correct"
CORRECT_ITEM_MIN = 7.0
WRONG_MEDIAN_MAX = 3.0
WRONG_ITEM_MAX = 7.0  # no wrong answer gets the verdict "correct"
LOW_MAX = 3.0  # every off-topic / nonsense / non-answer item
AUC_MIN = 0.95  # correct vs wrong


@dataclass(frozen=True)
class CheckItem:
    question: Question
    label: str
    answer: str
    part: str


def load_questions(path: Path = COURSE) -> dict[str, Question]:
    """The demo course's short-answer questions as the graders see them."""
    course = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Question] = {}
    for q in course["questions"]:
        if q["kind"] != "short_answer":
            continue
        out[q["id"]] = Question(
            id=q["id"],
            topic_id=q["topic_id"],
            kind=q["kind"],
            prompt=q["prompt"],
            difficulty=int(q.get("difficulty", 2)),
            references=tuple(reference_answers(q.get("reference_answer"))),
            rubric=q.get("rubric"),
            explanation=q.get("explanation"),
        )
    return out


def load_check_set(path: Path = CHECK_SET, course: Path = COURSE) -> list[CheckItem]:
    data = json.loads(path.read_text(encoding="utf-8"))
    questions = load_questions(course)
    items: list[CheckItem] = []
    for entry in data["questions"]:
        question = questions[entry["id"]]
        if entry["part"] not in PARTS:
            raise ValueError(f"{entry['id']}: unknown part {entry['part']!r}")
        for label, answers in entry["answers"].items():
            if label not in CLASSES:
                raise ValueError(f"{entry['id']}: unknown class {label!r}")
            items.extend(CheckItem(question, label, answer, entry["part"]) for answer in answers)
    return items


def auc(positives: Sequence[float], negatives: Sequence[float]) -> float:
    """P(a random positive scores above a random negative), ties counting one half."""
    if not positives or not negatives:
        return float("nan")
    pos = np.asarray(positives, dtype=float)[:, None]
    neg = np.asarray(negatives, dtype=float)[None, :]
    return float(((pos > neg).sum() + 0.5 * (pos == neg).sum()) / (pos.size * neg.size))


def grade_all(items: Iterable[CheckItem], grade: Callable[[Question, str], Grade]) -> list[tuple[CheckItem, Grade]]:
    return [(item, grade(item.question, item.answer)) for item in items]


def summarize(graded: Sequence[tuple[CheckItem, Grade]]) -> dict:
    """Per-class score statistics, verdict counts, AUC correct-vs-wrong, and the checks."""
    by_class: dict[str, list[float]] = {c: [] for c in CLASSES}
    verdicts: dict[str, dict[str, int]] = {c: {} for c in CLASSES}
    graders: dict[str, int] = {}
    for item, grade in graded:
        by_class[item.label].append(grade.score)
        verdicts[item.label][grade.verdict] = verdicts[item.label].get(grade.verdict, 0) + 1
        graders[grade.grader] = graders.get(grade.grader, 0) + 1
    stats = {
        c: {
            "n": len(s),
            "mean": round(float(np.mean(s)), 2),
            "median": round(float(np.median(s)), 2),
            "min": round(float(np.min(s)), 1),
            "max": round(float(np.max(s)), 1),
        }
        for c, s in by_class.items()
        if s
    }
    result = {
        "classes": stats,
        "verdicts": verdicts,
        "graders": graders,
        "auc_correct_vs_wrong": round(auc(by_class["correct"], by_class["wrong"]), 4),
        "auc_correct_vs_partial": round(auc(by_class["correct"], by_class["partial"]), 4),
        "auc_partial_vs_wrong": round(auc(by_class["partial"], by_class["wrong"]), 4),
        "auc_correct_vs_wrong_fluent": round(auc(by_class["correct"], by_class["wrong_fluent"]), 4),
    }
    correct = by_class["correct"]
    result["correct_share_verdict_correct"] = (
        round(sum(s >= CORRECT_ITEM_MIN for s in correct) / len(correct), 3) if correct else None
    )
    result["failures"] = failures(by_class, round(auc(by_class["correct"], by_class["wrong"]), 4))
    return result


def failures(by_class: dict[str, list[float]], auc_cw: float) -> list[str]:
    """Every threshold the scores miss (empty when the chain separates the classes)."""
    out: list[str] = []
    correct, wrong = by_class.get("correct", []), by_class.get("wrong", [])
    if correct and np.median(correct) < CORRECT_MEDIAN_MIN:
        out.append(f"median correct {np.median(correct):.1f} < {CORRECT_MEDIAN_MIN}")
    if wrong and np.median(wrong) > WRONG_MEDIAN_MAX:
        out.append(f"median wrong {np.median(wrong):.1f} > {WRONG_MEDIAN_MAX}")
    if wrong and max(wrong) >= WRONG_ITEM_MAX:
        out.append(f"a wrong answer scores {max(wrong):.1f} >= {WRONG_ITEM_MAX} (verdict correct)")
    for label in NONSENSE_CLASSES:
        scores = by_class.get(label, [])
        if scores and max(scores) > LOW_MAX:
            out.append(f"a {label} answer scores {max(scores):.1f} > {LOW_MAX}")
    if not auc_cw >= AUC_MIN:
        out.append(f"AUC correct vs wrong {auc_cw:.3f} < {AUC_MIN}")
    return out
