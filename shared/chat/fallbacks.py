"""What answers when a model artifact is missing or broken.

The chat function must keep answering without its models (first start before
`make models`, a corrupt version that the registry refused). These rules are
deliberately simple and their confidence deliberately modest, so the product's
thresholds treat their answers with suspicion (rephrase below 0.40, human
review below 0.60), and every response names `keyword-rules` or
`confusion-heuristic` as what answered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from shared.models.intent import IntentPrediction

INTENTS = (
    "concept_explanation",
    "debugging_help",
    "interview_practice",
    "practice_quiz",
    "review_summary",
    "tutor_feedback",
    "off_topic",
)

# Ordered: the first rule that matches wins (debugging before concept: "why is my loop broken").
_RULES: list[tuple[str, re.Pattern[str]]] = [
    (
        "debugging_help",
        re.compile(
            r"\b(error|exception|traceback|bug|broken|crash\w*|doesn'?t work|not working|fails?|wrong output|"
            r"my code|my (loop|function|program)|returns? none|\w+Error)\b",
            re.I,
        ),
    ),
    ("interview_practice", re.compile(r"\b(interview\w*|recruiter|hiring|mock|whiteboard|behaviou?ral)\b", re.I)),
    (
        "practice_quiz",
        re.compile(
            r"\b(quiz|test me|exercise|practi[cs]e|problem to solve|question for me|drill|challenge me)\b", re.I
        ),
    ),
    (
        "review_summary",
        re.compile(
            r"\b(summar\w+|recap|review|revise|revision|refresher|key points|tl;?dr|cheat ?sheet|remind me)\b", re.I
        ),
    ),
    (
        "tutor_feedback",
        re.compile(
            r"\b(your (answer|explanation|hint|reply)|you (were|are) (wrong|right)|thanks?|thank you|"
            r"too (long|short|fast|slow)|helpful|unhelpful|useless)\b",
            re.I,
        ),
    ),
    (
        "concept_explanation",
        re.compile(r"\b(what|why|how|explain|difference|mean[s]?|understand|concept|define|definition)\b", re.I),
    ),
]
_RULE_CONFIDENCE = 0.5
_FALLBACK = "off_topic"


def keyword_intent(text: str) -> IntentPrediction:
    """Intent by keyword rules; probability mass split between the match and the rest."""
    label = next((name for name, rule in _RULES if rule.search(text)), _FALLBACK)
    confidence = _RULE_CONFIDENCE if label != _FALLBACK else 0.35
    rest = (1.0 - confidence) / (len(INTENTS) - 1)
    probs = {name: (confidence if name == label else rest) for name in INTENTS}
    return IntentPrediction(label=label, confidence=confidence, probs=probs)


_CONFUSED = re.compile(
    r"(\bi (still )?(don'?t|do not|can'?t) (get|understand|follow)|\bconfus\w*|\blost\b|makes? no sense|"
    r"doesn'?t make sense|\bhuh\b|\bwhat\?|\?\?|\bstill\b.*\b(wrong|broken|stuck)|\bstuck\b|\bagain\b)",
    re.I,
)


def heuristic_confusion(texts: Sequence[str], embeddings: np.ndarray | None) -> float:
    """P(confused) from phrases in the newest message and from asking the same thing
    again (the newest message nearly identical in meaning to the previous one)."""
    if not texts:
        return 0.0
    score = 0.15
    if _CONFUSED.search(texts[-1]):
        score += 0.45
    if embeddings is not None and len(embeddings) >= 2:
        similarity = float(np.dot(embeddings[-1], embeddings[-2]))
        if similarity > 0.8:
            score += 0.3
    if len(texts) >= 2 and all(_CONFUSED.search(t) for t in texts[-2:]):
        score += 0.1
    return min(score, 0.95)
