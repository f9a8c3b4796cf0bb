"""Session topic hysteresis, source relevance and the out-of-domain rules, without models:
hits are built by hand (their similarity to the question is the point)."""

from __future__ import annotations

import pytest

from shared.chat import grounding
from shared.chat.grounding import NamedTopic, choose_topic, relevant_sources
from shared.chat.pipeline import ChatInput, ChatPipeline
from shared.db import get_engine
from shared.http.auth import Principal
from shared.llm.router import get_router
from shared.models.intent import IntentPrediction, known_word_share
from shared.rag.retrieval import RetrievedNode


def hit(node_id: str, topic: str, similarity: float | None) -> RetrievedNode:
    return RetrievedNode(node_id, node_id, topic, "explanation", f"text of {node_id}", 0.01, similarity, None)


def test_session_topic_is_kept_unless_another_clearly_wins():
    hits = [hit("cond-1", "py-conditionals", 0.47), hit("var-1", "py-variables", 0.41)]
    # Conditionals is better, but not by SWITCH_MARGIN: the follow-up stays in Variables.
    assert choose_topic("py-variables", hits, {}) == grounding.TopicDecision("py-variables", "kept")
    clear = [hit("list-6", "py-lists", 0.69), hit("loop-7", "py-loops", 0.43)]
    assert choose_topic("py-loops", clear, {}) == grounding.TopicDecision("py-lists", "switched")
    # Clearly better but not grounded (below the calibrated level): not evidence enough.
    weak = [hit("x", "phys-newton", 0.30), hit("y", "py-loops", 0.05)]
    assert choose_topic("py-loops", weak, {}).topic_id == "py-loops"


def test_naming_a_topic_moves_the_session_and_naming_the_session_topic_keeps_it():
    hits = [hit("loop-1", "py-loops", 0.6), hit("list-1", "py-lists", 0.5)]
    named = {"py-lists": NamedTopic("py-lists", True)}
    assert choose_topic("py-loops", hits, named) == grounding.TopicDecision("py-lists", "named")
    # Any word of its title keeps the session topic, unless another topic is named in full.
    partly = {"phys-energy": NamedTopic("phys-energy", False)}
    assert choose_topic("phys-energy", hits, partly).reason == "kept"
    assert choose_topic("py-variables", hits, {**named, "py-variables": NamedTopic("py-variables", False)}) == (
        grounding.TopicDecision("py-lists", "named")
    )
    both_full = {**named, "py-loops": NamedTopic("py-loops", True)}
    assert choose_topic("py-loops", hits, both_full).reason == "kept"


def test_a_new_session_takes_a_topic_only_from_a_grounded_message():
    assert choose_topic(None, [hit("a", "py-loops", 0.6)], {}) == grounding.TopicDecision("py-loops", "inferred")
    assert choose_topic(None, [hit("a", "py-loops", 0.3)], {}).topic_id is None
    # Without vectors only the ranking is known: the first hit's topic, as before.
    assert choose_topic(None, [hit("a", "py-dicts", None)], {}).topic_id == "py-dicts"


def test_sources_are_filtered_by_topic_and_similarity():
    hits = [
        hit("var-2", "py-variables", 0.52),
        hit("var-1", "py-variables", 0.45),
        hit("newton-3", "phys-newton", 0.31),  # the stray citation of the drift report
        hit("var-7", "py-variables", 0.30),  # more than RELATIVE_MARGIN behind the best
        hit("var-9", "py-variables", None),  # no vector: cannot show it is relevant
    ]
    assert [h.id for h in relevant_sources(hits, "py-variables", 4)] == ["var-2", "var-1"]
    # Without a topic, only grounded material is cited, from anywhere.
    assert [h.id for h in relevant_sources(hits, None, 4)] == ["var-2", "var-1"]
    assert relevant_sources([hit("n", "phys-newton", 0.2)], None, 4) == []
    # No vectors at all: the ranking stands.
    assert [h.id for h in relevant_sources([hit("a", "t", None), hit("b", "t", None)], "t", 1)] == ["a"]


def test_named_topics_from_the_course(course):
    with course.connect() as conn:
        named = grounding.named_topics(conn, "list comprehensions")
        assert named == {"py-lists": NamedTopic("py-lists", True)}
        hold = grounding.named_topics(conn, "can a variable hold a list")
        assert hold["py-lists"].fully and not hold["py-variables"].fully
        assert grounding.named_topics(conn, "") == {}


def test_known_word_share():
    vocab = {"what", "is", "a", "variable", "force", "my", "list", "in"}
    assert known_word_share("asdf qwer zxcv", vocab) == 0.0
    assert known_word_share("what is a varible", vocab) == 0.75
    assert known_word_share("force", vocab) == 1.0 and known_word_share("???", vocab) == 1.0


class ReadingIntent:
    """A confident intent model that knows a few words, like the real one's vocabulary."""

    VOCAB = frozenset("what is a the how do loop loops work for while list tell me joke force".split())

    def __init__(self, label: str, confidence: float) -> None:
        self.label, self.confidence = label, confidence

    def predict(self, texts):
        probs = {self.label: self.confidence, "concept_explanation": (1 - self.confidence) / 2}
        probs.setdefault("off_topic", (1 - self.confidence) / 2)
        return [IntentPrediction(self.label, self.confidence, probs)]

    def known_word_share(self, text):
        return known_word_share(text, self.VOCAB)


def run(course, stubs, intent, message, **kw):
    reg = stubs["StubRegistry"](intent=intent)
    p = ChatPipeline(
        engine=get_engine, registry=lambda: reg, embeddings=lambda: stubs["HashEncoder"](), router=get_router
    )
    return p.run(Principal("alice"), ChatInput(message, **kw), "r")


def test_unreadable_message_gets_low_confidence_and_a_rephrase_hint(course, stubs):
    out = run(course, stubs, ReadingIntent("practice_quiz", 0.93), "asdf qwer zxcv")
    assert out["confidence"] < 0.40 and out["needs_rephrase"] is True
    assert "couldn't read" in out["rephrase_hint"] and out["sources"] == []


def test_rephrase_hint_is_in_the_contract_only_when_needed(course, stubs):
    sure = run(course, stubs, ReadingIntent("concept_explanation", 0.9), "how do for loops work")
    assert sure["needs_rephrase"] is False and sure["rephrase_hint"] is None
    unsure = run(course, stubs, ReadingIntent("review_summary", 0.3), "how do loops work", topic_id="py-loops")
    assert unsure["needs_rephrase"] is True and "rephrase" in unsure["rephrase_hint"]
    assert "Loops" in unsure["rephrase_hint"]


def test_the_session_keeps_the_topic_it_was_given(course, stubs):
    intent = ReadingIntent("concept_explanation", 0.9)
    first = run(course, stubs, intent, "how do loops work", topic_id="py-loops")
    follow = run(course, stubs, intent, "and what about the last one", session_id=first["session_id"])
    assert follow["topic_id"] == "py-loops"
    assert all(s["topic_id"] == "py-loops" for s in follow["sources"])


@pytest.mark.parametrize("message", ["tell me about lists", "list comprehensions"])
def test_naming_another_topic_moves_the_session(course, stubs, message):
    intent = ReadingIntent("concept_explanation", 0.9)
    first = run(course, stubs, intent, "how do loops work", topic_id="py-loops")
    moved = run(course, stubs, intent, message, session_id=first["session_id"])
    assert moved["topic_id"] == "py-lists"
    again = run(course, stubs, intent, "and how do I sort one", session_id=first["session_id"])
    assert again["topic_id"] == "py-lists", "the new topic is the session's from now on"
