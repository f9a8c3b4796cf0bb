"""The offline provider: an honest answer composed from the retrieved material only.

It needs no network and no key, so the local stack (and the cloud, when every LLM is
down) always answers. It cannot write, so it does not pretend to: every reply says it
is the offline mode, quotes the course material it was given (titles and snippets,
verbatim) with node ids, and adds only fixed, content-free guidance chosen by intent
and the behaviour hints. With no material it says so instead of guessing. For JSON
tasks it returns only the structured answer the caller prepared (`Prompt.offline_json`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from shared.llm.errors import ProviderError
from shared.llm.types import Grounding, Prompt, ProviderResult, Source

MODEL = "offline-composer-1"
BANNER = "(Offline mode: no AI model is connected, so this answer is put together from the course material only.)"
MAX_SOURCES = 3
SNIPPET_CHARS = 420

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class OfflineProvider:
    name = "offline"

    def describe(self) -> dict[str, Any]:
        return {"model": MODEL, "network": False}

    def generate(self, model: str, prompt: Prompt, timeout_s: float) -> ProviderResult:
        return ProviderResult(text=self._answer(prompt), model=model or MODEL, finish_reason="STOP")

    def stream(self, model: str, prompt: Prompt, timeout_s: float) -> Iterator[str | ProviderResult]:
        text = self._answer(prompt)
        # Line by line: the streaming path is exercised locally exactly as with an LLM.
        yield from text.splitlines(keepends=True)
        yield ProviderResult(text=text, model=model or MODEL, finish_reason="STOP")

    def _answer(self, prompt: Prompt) -> str:
        if prompt.json_schema is not None:
            if prompt.offline_json is None:
                raise ProviderError(
                    self.name, "offline mode cannot write structured content for this task", transient=False
                )
            return json.dumps(prompt.offline_json)
        if prompt.grounding is None:
            return (
                f"{BANNER}\nNo course material was provided for this request, "
                "so I can't answer it without a connected AI model."
            )
        return compose(prompt.grounding)


def compose(g: Grounding) -> str:
    """The reply for one grounding: banner, intent-specific body, hints, sources."""
    sources = list(g.sources[:MAX_SOURCES])
    lines = [BANNER, ""]
    if g.intent == "off_topic":
        lines.append(
            "I'm the course tutor, so I can only help with the course topics. "
            "Ask me about a concept, a bug in your code, or for practice questions."
        )
        return "\n".join(lines).strip()
    if not sources:
        lines.append(
            f'I couldn\'t find course material that answers "{_clip(g.query, 160)}". '
            "Try rephrasing your question or naming the topic it is about."
        )
        return "\n".join(_with_hints(lines, g)).strip()

    about = f" on {g.topic_title}" if g.topic_title else ""
    if g.is_confused:
        lines.append(
            "Let's take this one step at a time. Start with the first excerpt below: "
            "it is the closest match to your question. Read it slowly, then the next one."
        )
        lines.append("")
    body = _BODIES.get(g.intent, _concept)
    lines += body(sources, about)
    return "\n".join([*_with_hints(lines, g), "", _citations(sources)]).strip()


def _concept(sources: list[Source], about: str) -> list[str]:
    lines = [f"Here is what the course material{about} says:", ""]
    lines += [f"**{s.title}** — {_clip(s.snippet, SNIPPET_CHARS)}" for s in sources]
    return lines


def _debugging(sources: list[Source], about: str) -> list[str]:
    lines = [
        f"I can't run or read your code in offline mode, but this course material{about} "
        "covers the problem you describe:",
        "",
    ]
    lines += [f"**{s.title}** — {_clip(s.snippet, SNIPPET_CHARS)}" for s in sources]
    lines += [
        "",
        "Compare your code with it line by line, and read the last line of the error message: "
        "it names the error and the line where it happened.",
    ]
    return lines


def _interview(sources: list[Source], about: str) -> list[str]:
    lines = ["Practise explaining these in your own words, out loud, before reading the reference text:", ""]
    for i, s in enumerate(sources, 1):
        lines.append(f"{i}. Explain **{s.title}**. Reference: {_clip(s.snippet, SNIPPET_CHARS)}")
    return lines


def _practice(sources: list[Source], about: str) -> list[str]:
    lines = [
        f"Practice from the course material{about}: for each item, write down what you remember "
        "first, then check it against the excerpt.",
        "",
    ]
    for i, s in enumerate(sources, 1):
        lines.append(f"{i}. What do you know about **{s.title}**? Check: {_clip(s.snippet, SNIPPET_CHARS)}")
    return lines


def _review(sources: list[Source], about: str) -> list[str]:
    lines = [f"Summary of the course material{about}:", ""]
    lines += [f"- **{s.title}**: {_first_sentence(s.snippet)}" for s in sources]
    return lines


def _feedback(sources: list[Source], about: str) -> list[str]:
    lines = ["Thanks for telling me. The material most related to your message is:", ""]
    lines += [f"**{s.title}** — {_clip(s.snippet, SNIPPET_CHARS)}" for s in sources]
    return lines


_BODIES = {
    "concept_explanation": _concept,
    "debugging_help": _debugging,
    "interview_practice": _interview,
    "practice_quiz": _practice,
    "review_summary": _review,
    "tutor_feedback": _feedback,
}


def _with_hints(lines: list[str], g: Grounding) -> list[str]:
    if g.suggestion:
        lines = [*lines, "", f"Next step: {g.suggestion.strip()}"]
    return lines


def _citations(sources: list[Source]) -> str:
    return "Sources: " + "; ".join(f"{s.title} [{s.node_id}]" for s in sources)


def _clip(text: str, limit: int) -> str:
    """Whole sentences up to `limit` characters (a word boundary if one sentence is longer)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    out = ""
    for sentence in _SENTENCE_END.split(text):
        if len(out) + len(sentence) + 1 > limit:
            break
        out = f"{out} {sentence}".strip()
    if not out:
        out = text[:limit].rsplit(" ", 1)[0]
    return out + " …"


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return _clip(first, SNIPPET_CHARS)
