"""The offline provider: honest, grounded only in what it was given, and labelled as offline."""

from __future__ import annotations

import pytest

from shared.llm import Grounding, LLMRouter, Prompt, Source
from shared.llm.errors import ProviderError
from shared.llm.providers.offline import BANNER, OfflineProvider

LOOPS = Source("py-loops-1", "for loops", "A for loop repeats a block once per item. range(3) gives 0, 1, 2.")
RANGE = Source("py-range-2", "range() stops early", "range(stop) never includes stop itself. Use range(1, 4).")


def answer(grounding: Grounding | None, **kw: object) -> str:
    prompt = Prompt.simple("system", grounding.query if grounding else "q", grounding=grounding, **kw)
    return OfflineProvider().generate("offline-composer-1", prompt, 1.0).text


@pytest.mark.parametrize(
    "intent",
    [
        "concept_explanation",
        "debugging_help",
        "interview_practice",
        "practice_quiz",
        "review_summary",
        "tutor_feedback",
        "some_new_intent",
    ],
)
def test_every_intent_says_offline_and_cites_only_given_sources(intent: str) -> None:
    text = answer(Grounding(intent=intent, query="how does range work?", sources=(LOOPS, RANGE)))
    assert text.startswith(BANNER)
    assert "[py-loops-1]" in text and "[py-range-2]" in text
    # The content comes from the snippets, verbatim (review uses the first sentence).
    assert "range(stop) never includes stop itself." in text


def test_no_material_means_an_honest_no_not_a_guess() -> None:
    text = answer(Grounding(intent="concept_explanation", query="what is a monad?", sources=()))
    assert BANNER in text
    assert "couldn't find course material" in text
    assert "Sources:" not in text


def test_off_topic_declines_without_citing() -> None:
    text = answer(Grounding(intent="off_topic", query="who won the match?", sources=(LOOPS,)))
    assert "only help with the course topics" in text
    assert "py-loops-1" not in text


def test_behaviour_hints_change_the_reply() -> None:
    plain = answer(Grounding(intent="concept_explanation", query="loops?", sources=(LOOPS,)))
    confused = answer(Grounding(intent="concept_explanation", query="loops?", sources=(LOOPS,), is_confused=True))
    suggested = answer(
        Grounding(
            intent="concept_explanation", query="loops?", sources=(LOOPS,), suggestion="Try the nested loops exercise."
        )
    )
    assert "one step at a time" in confused and "one step at a time" not in plain
    assert "Next step: Try the nested loops exercise." in suggested and "Next step" not in plain


def test_long_snippets_are_clipped_at_a_sentence() -> None:
    long = Source("n1", "Long", " ".join(f"Sentence number {i} is here." for i in range(60)))
    text = answer(Grounding(intent="concept_explanation", query="q", sources=(long,)))
    assert "Sentence number 0 is here." in text
    assert "Sentence number 59" not in text
    assert "…" in text


def test_only_top_three_sources_are_used() -> None:
    sources = tuple(Source(f"n{i}", f"T{i}", f"Body {i}.") for i in range(5))
    text = answer(Grounding(intent="review_summary", query="q", sources=sources))
    assert "[n2]" in text and "[n3]" not in text


def test_without_grounding_it_says_it_cannot_answer() -> None:
    text = answer(None)
    assert BANNER in text and "can't answer" in text


def test_structured_tasks_return_only_the_prepared_answer() -> None:
    provider = OfflineProvider()
    prepared = {"question": "q?", "options": ["a", "b"], "answer": 0}
    with_payload = Prompt.simple("s", "u", json_schema={"type": "object"}, offline_json=prepared)
    assert '"options": ["a", "b"]' in provider.generate("m", with_payload, 1.0).text
    with pytest.raises(ProviderError) as info:
        provider.generate("m", Prompt.simple("s", "u", json_schema={"type": "object"}), 1.0)
    assert not info.value.transient


def test_streaming_yields_the_same_text_line_by_line() -> None:
    router = LLMRouter({"offline": OfflineProvider()}, ["offline"])
    prompt = Prompt.simple("s", "loops?", grounding=Grounding("concept_explanation", "loops?", (LOOPS, RANGE)))
    items = list(router.stream("chat", prompt))
    final = items[-1]
    deltas = items[:-1]
    assert len(deltas) > 3 and all(isinstance(d, str) for d in deltas)
    assert "".join(deltas) == final.text == router.generate("chat", prompt).text
    assert final.offline and final.provider == "offline" and final.cost_usd is None
