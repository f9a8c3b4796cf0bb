"""Text helpers the graders share: reference alternatives, content-word overlap, a
detector for non-answers ("I don't know", empty, punctuation only) and one for answers
that talk to the grader instead of answering the question."""

from __future__ import annotations

import re

#: A question may store several acceptable reference answers in `reference_answer`,
#: separated by a line holding only `---`.
REFERENCE_SEPARATOR = re.compile(r"\n\s*-{3,}\s*\n")

#: a decimal number is one token ("9.8" is not "9" and "8"), else words with an apostrophe part
_WORD = re.compile(r"[0-9]+(?:\.[0-9]+)+|[a-z0-9_]+(?:'[a-z]+)?")
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
    """A crude suffix strip: enough for overlap to match evaporated/evaporates."""
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> list[str]:
    return [_stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def overlap_f1(reference: str, answer: str, ignore: str | None = None) -> float:
    """F1 of the content-word multisets of reference and answer (0 when either is empty).

    `ignore`: a text (the question) whose words are dropped from both sides first
    ("question demoting", Mohler et al. 2011): repeating the question's words earns
    nothing, only the content the reference adds to the question counts."""
    ref, ans = content_words(reference), content_words(answer)
    if ignore:
        dropped = set(content_words(ignore))
        ref = [w for w in ref if w not in dropped]
        ans = [w for w in ans if w not in dropped]
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


# Whole answers that say "I don't know" (after lower-casing, dropping punctuation and
# collapsing spaces). Only the *whole* answer counts: "not sure, but b is 5" is an
# answer. Short words that can be real answers ("no", "none", "nothing", "zero") are
# deliberately absent: "None" is the right answer to "what does print() return?".
_NON_ANSWER = re.compile(
    r"""^(?:(?:um+|uh+|hm+|er+|well|honestly|sorry|oops|ok|okay)\s+)*
    (?:
        (?:i\s+)?(?:really\s+|honestly\s+|just\s+)?(?:do\s+not|dont|don\s?t|didn\s?t|didnt|cannot|can\s?t|cant)
            \s+(?:know|remember|recall|understand|get\s+it|know\s+the\s+answer|have\s+(?:a|any)\s+(?:clue|idea)|care)
      | (?:i\s+)?(?:have\s+)?no\s+(?:idea|clue|answer)
      | (?:i\s+)?(?:have\s+)?not\s+(?:a\s+)?(?:clue|sure|sure\s+at\s+all)
      | (?:i\s*(?:m|am)\s+)?(?:not\s+sure|unsure|clueless|stuck|lost|confused)
      | (?:i\s+)?(?:forgot|forget|give\s+up|gave\s+up|pass|skip)
      | idk|idc|dunno|dno|no\s+clue|nope|n\s?a|tbd|todo|nothing\s+to\s+say|no\s+comment
      | (?:i\s+)?(?:have\s+)?never\s+(?:heard\s+of\s+(?:it|this|that)|learned\s+(?:it|this|that))
    )
    (?:\s+(?:sorry|lol|haha|yet|anymore|tbh|really|at\s+all|the\s+answer|this\s+one|this|that|it|what\s+to\s+(?:say|write)))*$""",
    re.VERBOSE,
)
_ALNUM = re.compile(r"[^\W_]", re.UNICODE)


def normalize_for_match(text: str) -> str:
    """Lower case, apostrophes removed ("don't" -> "dont"), other punctuation as spaces."""
    text = text.lower().replace("\u2019", "'").replace("'", "")
    return " ".join(re.sub(r"[^\w\s]|_", " ", text).split())


def is_non_answer(answer: str) -> bool:
    """True when the answer makes no attempt: empty, punctuation/symbols only, or a whole
    "I don't know" (idk, dunno, no idea, not sure, I forgot, pass, ...). Such answers are
    graded 0 without calling any model."""
    if not _ALNUM.search(answer or ""):
        return True
    return bool(_NON_ANSWER.match(normalize_for_match(answer)))
