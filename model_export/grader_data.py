"""SemEval-2013 Task 7 (SciEntsBank and Beetle, 3-way) as grader training data, and
the validation protocol.

Each XML file is one question with its reference answer(s) and student answers labelled
`correct`, `contradictory` or `incorrect` (the 3-way task folds "partially correct but
incomplete", "irrelevant" and "non domain" into `incorrect`). One example is one
(question, reference answers, student answer, label) record, `Answer`, which knows its
corpus and domain:
- SciEntsBank (`sciEntsBank`): one reference per question; domain = the FOSS module, the
  question file's prefix before the first '-' (EM, FN, II, LF, LP, ME, MS, MX, PS, SE,
  ST, VB; the XML's `module` attribute says the same);
- Beetle (`beetle`): several reference answers per question (BEST / GOOD / MINIMAL);
  a student answer's `answerMatch` names the reference it was matched with, and
  `Answer.reference` is that one (the first, BEST, when the answer has no match:
  1,024 of 3,941). Domain = the `module` attribute (FaultFinding, ...).
Training pairs an answer with its matched reference only (not with every reference):
the label was given against that reference (a `contradictory` answer contradicts one
reference, not necessarily the others), and serving scores every reference and keeps
the best-matching one, which is what the matched reference stands for.

The validation protocol (`grader_split`), all on whole held-out units:
- unseen questions: `split_by_question` over SciEntsBank, unchanged since the first
  grader (seed 42: 14 validation and 14 test questions), so old and new numbers compare;
- unseen answers: a seeded tenth of the answers to the remaining SciEntsBank questions;
- unseen domains: every SciEntsBank answer of the domains `HELD_OUT_DOMAINS` (FN, LF,
  VB: 31 questions, 1,112 answers; fixed, chosen before any result as three mid-sized
  modules unrelated to Beetle's electricity), held out whole (their questions that fall
  in val/test are counted in both sets);
- training: Beetle (all of it: no Beetle answer is evaluated on) + the SciEntsBank
  answers left. One trained model gives every number, so the production trainer reports
  all of them in its manifest.
It depends only on the question ids and the seed, so the trainer, the benchmark and a
rebuild all see the same partition. Pure Python (no torch): the serving-side tests and
the benchmark's baselines use it too.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_export import training
from model_export.base_model import data_root

#: The classifier's output order; part of the published label map.
LABELS: tuple[str, ...] = ("correct", "contradictory", "incorrect")
REPO = Path(__file__).resolve().parent.parent
THREE_WAY = Path("semeval2013") / "training" / "3way"
SUBDIR = THREE_WAY / "sciEntsBank"
BEETLE_SUBDIR = THREE_WAY / "beetle"
SCIENTSBANK, BEETLE = "sciEntsBank", "beetle"
#: SciEntsBank domains held out whole for the unseen-domains measure (see the docstring)
HELD_OUT_DOMAINS: tuple[str, ...] = ("FN", "LF", "VB")


@dataclass(frozen=True)
class Answer:
    """One graded student answer to one question."""

    question_id: str
    question: str
    references: tuple[str, ...]
    answer: str
    label: str
    corpus: str = SCIENTSBANK
    domain: str = ""
    #: index in `references` of the reference the answer was matched with (Beetle)
    match: int = 0

    @property
    def reference(self) -> str:
        return self.references[self.match]


@dataclass(frozen=True)
class GraderSplit:
    """train: answers to training questions; unseen_answers: held-out answers to those
    questions; val / test: every answer to held-out questions."""

    train: list[Answer]
    unseen_answers: list[Answer]
    val: list[Answer]
    test: list[Answer]
    #: every answer of the held-out SciEntsBank domains (empty from split_by_question)
    unseen_domains: list[Answer] = field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        sizes = {
            "train": len(self.train),
            "unseen_answers": len(self.unseen_answers),
            "val": len(self.val),
            "test": len(self.test),
            "train_questions": len({a.question_id for a in self.train}),
            "val_questions": len({a.question_id for a in self.val}),
            "test_questions": len({a.question_id for a in self.test}),
        }
        if self.unseen_domains:
            sizes |= {
                "train_beetle": sum(1 for a in self.train if a.corpus == BEETLE),
                "unseen_domains": len(self.unseen_domains),
                "unseen_domains_questions": len({a.question_id for a in self.unseen_domains}),
            }
        return sizes


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


def beetle_dir(root: Path | None = None) -> Path:
    folder = (root or data_root()) / BEETLE_SUBDIR
    if not folder.is_dir() or not any(folder.glob("*.xml")):
        raise GraderDataMissing(f"SemEval-2013 Beetle 3-way XML not found under {folder}")
    return folder


def parse_question(path: Path, corpus: str = SCIENTSBANK) -> list[Answer]:
    """Every labelled student answer in one question file (either corpus)."""
    root = ET.parse(path).getroot()
    qid = root.get("id") or path.stem
    question = (root.findtext("questionText") or "").strip()
    ref_nodes = [r for r in root.iter("referenceAnswer") if (r.text or "").strip()]
    refs = tuple((r.text or "").strip() for r in ref_nodes)
    if not refs:
        return []
    ref_index = {r.get("id"): i for i, r in enumerate(ref_nodes) if r.get("id")}
    domain = path.stem.split("-")[0] if corpus == SCIENTSBANK else (root.get("module") or corpus)
    out = []
    for node in root.iter("studentAnswer"):
        label = node.get("accuracy")
        text = (node.text or "").strip()
        if label in LABELS and text:
            match = ref_index.get(node.get("answerMatch") or "", 0)
            out.append(Answer(qid, question, refs, text, label, corpus, domain, match))
    return out


def load_answers(folder: Path | None = None, corpus: str = SCIENTSBANK) -> list[Answer]:
    """All 3-way answers of one corpus folder (SciEntsBank by default), in file-name order."""
    folder = folder or (sciEntsBank_dir() if corpus == SCIENTSBANK else beetle_dir())
    answers: list[Answer] = []
    for path in sorted(folder.glob("*.xml")):
        answers += parse_question(path, corpus)
    return answers


def load_beetle(root: Path | None = None) -> list[Answer]:
    """All Beetle 3-way answers (each with its matched reference)."""
    return load_answers(beetle_dir(root), BEETLE)


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


def grader_split(
    scientsbank: list[Answer],
    beetle: Sequence[Answer] = (),
    *,
    seed: int = 42,
    held_out_domains: tuple[str, ...] = HELD_OUT_DOMAINS,
) -> GraderSplit:
    """The validation protocol (module docstring): `split_by_question` over SciEntsBank
    as ever, then the held-out domains' answers out of train and unseen answers into
    `unseen_domains` (with those of val/test questions), and Beetle into train."""
    base = split_by_question(scientsbank, seed=seed)
    held = set(held_out_domains)
    return GraderSplit(
        train=[a for a in base.train if a.domain not in held] + list(beetle),
        unseen_answers=[a for a in base.unseen_answers if a.domain not in held],
        val=base.val,
        test=base.test,
        unseen_domains=[a for a in scientsbank if a.domain in held],
    )


def label_counts(answers: list[Answer]) -> dict[str, int]:
    return {label: sum(1 for a in answers if a.label == label) for label in LABELS}


def classification_metrics(y: np.ndarray, pred: np.ndarray) -> dict:
    """Accuracy, macro-F1 and weighted-F1 (the SemEval-2013 Task 7 measures), per-class F1."""
    return training.classification_metrics(y, pred, LABELS)
