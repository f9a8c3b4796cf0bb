"""Text helpers the graders share: reference alternatives, content-word overlap, and a
detector for answers that talk to the grader instead of answering the question."""

from __future__ import annotations

import re

#: A question may store several acceptable reference answers in `reference_answer`,
#: separated by a line holding only `---`.
REFERENCE_SEPARATOR = re.compile(r"\n\s*-{3,}\s*\n")

_WORD = re.compile(r"[a-z0-9_]+(?:'[a-z]+)?")
_STOPWORDS = frozenset(
    """a an the and or but if then so of to in on at by for with from into over under as is are was
    were be been being it its this that these those there here i you he she we they me my your our
    their them his her do does did doing done have has had not no yes can could would should will
    just also very too than because about which who whom what when where why how all any some
    more most other such only own same s t""".split()
)

# Phrases that address the grader rather than the question. Used to flag an answer (and
# to distrust an LLM grade that follows it); never to change an offline grade.
_INJECTION = re.compile(
    r"""(ignore|disregard|forget|override|bypass)\b.{0,40}\b(rubric|instruction|instructions|prompt|rules?|above|previous|grading|reference)
      |\b(give|award|grade|score|mark)\s+(me|this|it|the\s+answer)?\s*(a\s+)?(full\s+marks|10|ten|100|perfect|maximum)
      |\b(you\s+are\s+now|act\s+as|system\s+prompt|new\s+instructions|as\s+the\s+grader|dear\s+grader)\b
      |</?\s*(student_answer|system|instructions?)\b""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)


def reference_answers(reference_answer: str | None) -> list[str]:
    """The acceptable reference answers of a question (at least one if any text is stored)."""
    if not reference_answer:
        return []
    return [part.strip() for part in REFERENCE_SEPARATOR.split(reference_answer) if part.strip()]


def _stem(word: str) -> str:
    """A crude suffix strip: enough for overlap to match evaporate/evaporated/evaporates."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def overlap_f1(reference: str, answer: str) -> float:
    """F1 of the content-word multisets of reference and answer (0 when either is empty)."""
    ref, ans = content_words(reference), content_words(answer)
    if not ref or not ans:
        return 0.0
    remaining: dict[str, int] = {}
    for w in ref:
        remaining[w] = remaining.get(w, 0) + 1
    common = 0
    for w in ans:
        if remaining.get(w, 0) > 0:
            remaining[w] -= 1
            common += 1
    if common == 0:
        return 0.0
    precision, recall = common / len(ans), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def looks_like_injection(answer: str) -> bool:
    """True when the answer contains text aimed at the grader ("ignore the rubric...")."""
    return bool(_INJECTION.search(answer))
