"""From a grader's raw output to the product's 0-10 score and verdict, in one place.

Every short-answer grader ends here, so a score means the same thing whichever grader
answered:

- grader model (3-way classifier, temperature-calibrated): score = 10 * P(correct).
  With calibrated probabilities that is the expected credit of the answer. The
  partial-credit rule is the band: an answer the model cannot call correct or
  incorrect with confidence lands between the thresholds below and gets the verdict
  `partially_correct` with the matching partial score. The verdict is `contradictory`
  when contradictory is the model's most likely class (the answer states the opposite
  of the reference); the score stays 10 * P(correct), which is then below 5.
- embedding similarity (fallback): score = 10 * clip((cos - SIM_LOW) / (SIM_HIGH - SIM_LOW)),
  a linear ramp between two cosine similarities of reference and answer measured on
  SciEntsBank's training questions (see docs/grading.md). It cannot see contradiction.
- lexical overlap (last resort): the same ramp over content-word F1.

Verdict bands on the score (all graders): >= CORRECT_AT correct, >= PARTIAL_AT
partially_correct, else incorrect. `correct` (the boolean stored with the attempt)
means verdict == correct; mastery gets score / 10 as soft evidence.
"""

from __future__ import annotations

from collections.abc import Sequence

VERDICTS = ("correct", "partially_correct", "incorrect", "contradictory")

CORRECT_AT = 7.0
PARTIAL_AT = 4.0

# The two ramps were fitted on SciEntsBank's training questions (3,898 answers, the
# benchmark's validation and test questions excluded): the "correct" band starts at the
# threshold that best separates correct answers from the rest (cosine 0.63, accuracy
# 0.647; content-word F1 0.33, accuracy 0.687), and LOW sits near the 10th percentile of
# correct answers, below which almost nothing is correct. See docs/grading.md.
#: cosine similarity of MiniLM embeddings (reference vs answer): <= LOW scores 0, >= HIGH 10
SIM_LOW = 0.30
SIM_HIGH = 0.77
#: content-word F1 (reference vs answer): <= LOW scores 0, >= HIGH 10
LEX_LOW = 0.05
LEX_HIGH = 0.45

MODEL_LABELS = ("correct", "contradictory", "incorrect")


def clamp_score(score: float) -> float:
    return round(min(10.0, max(0.0, float(score))), 1)


def verdict_for_score(score: float) -> str:
    if score >= CORRECT_AT:
        return "correct"
    if score >= PARTIAL_AT:
        return "partially_correct"
    return "incorrect"


def ramp(value: float, low: float, high: float) -> float:
    """0-10 linear between low and high, clipped."""
    return clamp_score(10.0 * (value - low) / (high - low))


def from_class_probs(probs: Sequence[float], labels: Sequence[str] = MODEL_LABELS) -> tuple[float, str]:
    """(score, verdict) from the grader model's calibrated class probabilities."""
    p = dict(zip(labels, (float(x) for x in probs), strict=True))
    score = clamp_score(10.0 * p["correct"])
    if max(p, key=lambda k: p[k]) == "contradictory":
        return score, "contradictory"
    return score, verdict_for_score(score)


def from_similarity(cosine: float) -> tuple[float, str]:
    score = ramp(cosine, SIM_LOW, SIM_HIGH)
    return score, verdict_for_score(score)


def from_overlap(f1: float) -> tuple[float, str]:
    score = ramp(f1, LEX_LOW, LEX_HIGH)
    return score, verdict_for_score(score)


def describe() -> dict:
    """The mapping as data, recorded in the grader's manifest entry and label file."""
    return {
        "model": "score = 10 * P(correct) (temperature-calibrated); verdict contradictory when "
        "contradictory is the most likely class, else by the score bands",
        "bands": {"correct": f">= {CORRECT_AT}", "partially_correct": f">= {PARTIAL_AT}", "incorrect": "below"},
        "embedding_fallback": {
            "cosine_low": SIM_LOW,
            "cosine_high": SIM_HIGH,
            "score": "10 * clip((cos - low) / (high - low), 0, 1)",
        },
        "lexical_fallback": {"f1_low": LEX_LOW, "f1_high": LEX_HIGH},
        "mastery_evidence": "score / 10",
    }
