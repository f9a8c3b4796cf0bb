"""The tutoring intent data set and its deterministic train/validation/test split.

The queries live in `model_export/data/intent_queries.tsv` (one `label<TAB>text` a line),
written for this project. The split is stratified by label and seeded so that the same
file and seed always give the same three parts: the training job's metrics, the temperature
fitted on validation and the held-out INT8 check all refer to a reproducible partition.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from shared.chat.fallbacks import INTENTS

DATA_FILE = Path(__file__).resolve().parent / "data" / "intent_queries.tsv"

# The taxonomy, in the fixed order of the classifier's output. The order is part of the
# published label map, so it never depends on the order of lines in the data file.
INTENT_LABELS: tuple[str, ...] = INTENTS  # one home: shared/chat/fallbacks.py

Example = tuple[str, str]
"""(text, label)."""


@dataclass(frozen=True)
class Split:
    """Three disjoint parts of one labelled set."""

    train: list[Example]
    val: list[Example]
    test: list[Example]

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def load_examples(path: Path = DATA_FILE) -> list[Example]:
    """Read `label<TAB>text` lines; `#` lines are comments. Unknown labels are an error."""
    examples: list[Example] = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        label, sep, text = line.partition("\t")
        if not sep or not text.strip():
            raise ValueError(f"{path}:{lineno}: expected 'label<TAB>text'")
        if label not in INTENT_LABELS:
            raise ValueError(f"{path}:{lineno}: unknown intent {label!r}")
        examples.append((text.strip(), label))
    return examples


def stratified_split(examples: list[Example], *, seed: int, val_frac: float = 0.1, test_frac: float = 0.1) -> Split:
    """Split each label's examples val/test/train by the given fractions (at least one each
    in val and test when a label has 3+ examples and the fraction is not 0), shuffled
    with `seed`.

    Stratifying keeps every intent represented in the small validation set, which the
    temperature fit and the per-class metrics both need.
    """
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in examples:
        by_label[label].append(text)
    rng = random.Random(seed)
    train: list[Example] = []
    val: list[Example] = []
    test: list[Example] = []
    for label in sorted(by_label):
        texts = sorted(by_label[label])  # independent of file order
        rng.shuffle(texts)
        n = len(texts)
        n_val = max(1, round(n * val_frac)) if n >= 3 and val_frac > 0 else 0
        n_test = max(1, round(n * test_frac)) if n >= 3 and test_frac > 0 else 0
        val += [(t, label) for t in texts[:n_val]]
        test += [(t, label) for t in texts[n_val : n_val + n_test]]
        train += [(t, label) for t in texts[n_val + n_test :]]
    rng.shuffle(train)
    return Split(train=train, val=val, test=test)
