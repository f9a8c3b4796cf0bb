"""SemEval-2013 Task 7 (SciEntsBank, 3-way) as grader training data, split by question.

Each XML file is one question with its reference answer(s) and student answers labelled
`correct`, `contradictory` or `incorrect` (the 3-way task folds "partially correct but
incomplete", "irrelevant" and "non domain" into `incorrect`). One example is one
(reference answer, student answer, label) triple; when a question has several reference
answers the first is used for training (SciEntsBank has one per question) and serving
picks the best-matching one.

The split imitates the task's test sets: whole questions are held out (the "unseen
questions" set, what a new question in the course looks like) for validation and test,
and a tenth of the answers to the remaining questions are held out as "unseen answers".
It depends only on the question ids and the seed, so the trainer, the benchmark and a
rebuild all see the same partition. Pure Python (no torch): the serving-side tests and
the benchmark's baselines use it too.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_export import training
from model_export.base_model import data_root

#: The classifier's output order; part of the published label map.
LABELS: tuple[str, ...] = ("correct", "contradictory", "incorrect")
REPO = Path(__file__).resolve().parent.parent
SUBDIR = Path("semeval2013") / "training" / "3way" / "sciEntsBank"


@dataclass(frozen=True)
class Answer:
    """One graded student answer to one question."""

    question_id: str
    question: str
    references: tuple[str, ...]
    answer: str
    label: str

    @property
    def reference(self) -> str:
        return self.references[0]


@dataclass(frozen=True)
class GraderSplit:
    """train: answers to training questions; unseen_answers: held-out answers to those
    questions; val / test: every answer to held-out questions."""

    train: list[Answer]
    unseen_answers: list[Answer]
    val: list[Answer]
    test: list[Answer]

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "unseen_answers": len(self.unseen_answers),
            "val": len(self.val),
            "test": len(self.test),
            "train_questions": len({a.question_id for a in self.train}),
            "val_questions": len({a.question_id for a in self.val}),
            "test_questions": len({a.question_id for a in self.test}),
        }


class GraderDataMissing(FileNotFoundError):
    """The SemEval folder is absent (a fresh clone): the grader model cannot be trained.

    `skip_model` tells the build to publish the version without the grader (serving
    then grades with embedding similarity) instead of failing."""

    skip_model = True


def sciEntsBank_dir(root: Path | None = None) -> Path:
    folder = (root or data_root()) / SUBDIR
    if not folder.is_dir() or not any(folder.glob("*.xml")):
        raise GraderDataMissing(f"SemEval-2013 SciEntsBank 3-way XML not found under {folder}")
    return folder


def parse_question(path: Path) -> list[Answer]:
    """Every labelled student answer in one question file."""
    root = ET.parse(path).getroot()
    qid = root.get("id") or path.stem
    question = (root.findtext("questionText") or "").strip()
    refs = tuple((r.text or "").strip() for r in root.iter("referenceAnswer") if (r.text or "").strip())
    if not refs:
        return []
    out = []
    for node in root.iter("studentAnswer"):
        label = node.get("accuracy")
        text = (node.text or "").strip()
        if label in LABELS and text:
            out.append(Answer(qid, question, refs, text, label))
    return out


def load_answers(folder: Path | None = None) -> list[Answer]:
    """All SciEntsBank 3-way answers, in file-name order (deterministic)."""
    folder = folder or sciEntsBank_dir()
    answers: list[Answer] = []
    for path in sorted(folder.glob("*.xml")):
        answers += parse_question(path)
    return answers


def split_by_question(
    answers: list[Answer],
    *,
    seed: int = 42,
    val_frac: float = 0.1,
    test_frac: float = 0.1,
    unseen_answer_frac: float = 0.1,
) -> GraderSplit:
    """Hold out whole questions for val and test; a share of the rest's answers as
    unseen answers. Seeded, and independent of file order."""
    questions = sorted({a.question_id for a in answers})
    rng = random.Random(seed)
    rng.shuffle(questions)
    n_val = max(1, round(len(questions) * val_frac))
    n_test = max(1, round(len(questions) * test_frac))
    val_q = set(questions[:n_val])
    test_q = set(questions[n_val : n_val + n_test])
    train, unseen, val, test = [], [], [], []
    answer_rng = random.Random(seed + 1)
    for a in answers:
        if a.question_id in val_q:
            val.append(a)
        elif a.question_id in test_q:
            test.append(a)
        elif answer_rng.random() < unseen_answer_frac:
            unseen.append(a)
        else:
            train.append(a)
    return GraderSplit(train, unseen, val, test)


def label_counts(answers: list[Answer]) -> dict[str, int]:
    return {label: sum(1 for a in answers if a.label == label) for label in LABELS}


def classification_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, macro-F1 and weighted-F1 (the SemEval-2013 Task 7 measures), per-class F1."""
    return training.classification_metrics(y, pred, LABELS)
