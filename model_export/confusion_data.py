"""The bootstrap data set for the confusion detector: simulated tutoring conversations.

No labelled confusion data exists yet, so the first model learns from conversations
simulated from a written generative story, built on cues the learning-analytics
literature ties to confusion in tutoring dialogue and MOOC forums:
- explicit statements of not understanding ("I'm lost", "wait, what?");
- re-asking the same question in other words soon after an answer (rephrasing);
- repeated confusion turns without progress;
- timing: a long pause (re-reading the reply) or a near-instant terse reply ("??").
It also contains the hard negatives that keep those cues from being shortcuts:
a deeper follow-up on the same topic (similar embedding, but engaged), a student who
was confused and then says they understand (recovery: the newest turn decides), a quick
move to a new topic, first questions, and short acknowledgements ("ok").

Each conversation follows one scenario; its label is the student's state after the
newest message. Message texts are filled from templates over programming/maths topics,
and the topics are split between train/validation/test, so the test metrics measure
generalisation to topics never seen in training. A small share of labels is flipped
(LABEL_NOISE) because real annotators disagree and the model should not become
certain. Timing is sampled from log-normal distributions per message kind, overlapping
on purpose. The retraining loop replaces this set with conversations labelled from real
feedback (thumbs down + human labels); the scenario mix is recorded in the manifest.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

TOPICS = [
    "recursion",
    "pointers",
    "closures",
    "big O notation",
    "hash maps",
    "SQL joins",
    "gradient descent",
    "linked lists",
    "binary search",
    "for loops",
    "while loops",
    "classes and objects",
    "inheritance",
    "async/await",
    "promises",
    "git branches",
    "dynamic programming",
    "binary trees",
    "graph traversal",
    "sorting algorithms",
    "derivatives",
    "integrals",
    "matrix multiplication",
    "probability",
    "p-values",
    "list comprehensions",
    "decorators",
    "generators",
    "exceptions",
    "regular expressions",
    "database indexes",
    "REST APIs",
    "stacks and queues",
    "memoization",
    "overfitting",
    "neural networks",
    "the event loop",
    "mutexes",
    "virtual memory",
    "type hints",
    "CSS flexbox",
    "React state",
    "Bayes' theorem",
    "eigenvectors",
    "heaps",
]

QUESTION = [
    "how does {t} work?",
    "can you explain {t}?",
    "what is {t}?",
    "I have a question about {t}",
    "what's the idea behind {t}",
    "could you teach me {t}",
    "when should I use {t}?",
    "explain {t} with an example please",
    "why do we need {t}?",
    "what are {t} used for",
    "hi! I'd like to learn about {t}",
    "today I want to study {t}",
    "tell me about {t}",
    "where is {t} used in practice?",
    "what should I know about {t} for my exam?",
    "give me an intro to {t}",
    "I'm starting {t} this week, where do I begin?",
    "how do I get started with {t}",
    "what are the basics of {t}?",
    "quick question on {t}",
]
FIRST_CONFUSED = [
    "I really don't understand {t} at all",
    "{t} makes no sense to me, I'm totally lost",
    "I've read the chapter on {t} three times and still don't get it",
    "I'm so confused about {t}",
    "nothing about {t} is clicking for me",
    "I keep getting lost with {t}, help",
    "I have absolutely no clue how {t} works",
    "{t} is so confusing, I give up",
    "can someone explain {t}, I'm completely lost",
    "I've been stuck on {t} all day and I still don't understand it",
]
CONFUSED = [
    "I still don't get it",
    "wait, what?",
    "huh?",
    "??",
    "I'm lost",
    "that makes no sense",
    "sorry, can you explain that again?",
    "I don't follow",
    "what do you mean by that?",
    "I read it twice and I'm still confused",
    "I don't understand the second part",
    "that's even more confusing",
    "umm what",
    "can you say that more simply?",
    "I'm confused",
    "no I still don't understand",
    "what? why?",
    "I'm not getting it",
    "this is going over my head",
    "sorry I'm really lost now",
    "nope, still confused",
    "I have no idea what that means",
    "that didn't help at all, I'm still stuck",
    "I don't understand anything you just said",
    "you lost me at the example",
    "none of this is clear to me",
    "wait I'm confused, why would that happen?",
    "still doesn't make sense",
    "I'm more confused than before",
    "what does that even mean",
    "hold on, I don't get the last step",
    "I really can't wrap my head around this",
    "can you go slower? I don't get it",
    "I'm totally lost, sorry",
    "?? what",
    "this is too hard, I don't get any of it",
    "that explanation confused me",
    "hmm no, that's not clear",
    "I thought I understood but now I don't",
    "why though? I don't see it",
    "I'm stuck and I don't understand why",
    "I don't get how that answers my question",
    "it's still unclear to me",
    "confused...",
    "I can't follow your explanation",
]
REPHRASE = [
    "so what exactly is {t}?",
    "but how does {t} actually work",
    "can you explain {t} in simpler words",
    "ok but what is {t} really doing",
    "in plain english, what is {t}",
    "so {t} is... what?",
    "I mean, what does {t} do step by step",
    "explain {t} again like I'm a beginner",
    "what is the point of {t} though",
    "so how is {t} supposed to work",
    "sorry, what is {t} again?",
    "can you explain {t} a different way",
    "but why would anyone use {t}?",
    "so basically {t} means what",
    "what's {t} in simple terms",
    "I still don't see how {t} works",
    "could you explain {t} without the jargon",
    "again, how does {t} work?",
    "what is {t}, in one sentence",
    "let me ask differently: what does {t} do?",
]
ACK = [
    "got it, thanks",
    "ok that makes sense",
    "perfect, I understand now",
    "oh I see!",
    "nice, that clicked",
    "cool, thanks",
    "ok",
    "thanks, that was clear",
    "right, makes sense",
    "ahh ok now I get it",
    "great, thank you",
    "understood",
    "that makes total sense",
    "yes that's clear now",
    "oh that's easy actually",
    "I understand it now, thanks",
    "makes sense!",
    "okay I follow",
    "ah, now it's clear",
    "that helped a lot, thanks",
    "alright, I get the idea",
    "yep, clear",
    "thank you, that answers my question",
    "oh wow that's simple when you put it like that",
    "I see what you mean now",
    "ok cool, I think I've got it",
    "clear, thanks!",
    "now I understand the difference",
    "that explanation was really clear",
    "ah right, of course",
    "fair enough, makes sense",
    "nice, I get why it works now",
    "good, that's what I thought",
    "thanks, I'm good now",
    "brilliant, thank you",
    "ok I can follow that",
    "oh so that's how it works",
    "that cleared it up",
    "ok, understood, thanks",
    "perfect",
]
FOLLOWUP = [
    "so is {t} faster than {t2}?",
    "when would I use {t} instead of {t2}?",
    "can you show an example of {t} in python?",
    "what are the downsides of {t}?",
    "how does {t} relate to {t2}?",
    "is {t} used a lot in real projects?",
    "what's a common mistake people make with {t}?",
    "could {t} be combined with {t2}?",
    "does {t} work the same way in javascript?",
    "what happens to {t} with really big inputs?",
    "is there a library that does {t} for me?",
    "how would I test code that uses {t}?",
    "interesting, and how is {t} implemented under the hood?",
    "what's the history of {t}?",
    "can {t} be used together with {t2} in one project?",
    "which is more common in industry, {t} or {t2}?",
    "what should I learn after {t}?",
    "are there alternatives to {t}?",
    "how do professionals debug problems with {t}?",
    "what's the time complexity of {t}?",
]
PRACTICE = [
    "can you give me an exercise on {t}",
    "quiz me on {t}",
    "let me try a problem on {t}",
    "give me a practice question about {t}",
    "can I practise {t} now?",
    "test me on {t} please",
    "I want to try an exercise with {t} myself",
    "give me a small task that uses {t}",
    "any practice problems for {t}?",
    "let's do a quick quiz on {t}",
    "I'd like to check myself on {t}",
]

LABEL_NOISE = 0.03
PRIOR_UNKNOWN_FIRST_GAP = 0.5

# scenario -> (label, relative weight, message kinds oldest first)
SCENARIOS: dict[str, tuple[int, float, tuple[str, ...]]] = {
    "first_question": (0, 1.0, ("question",)),
    "first_confused": (1, 0.7, ("first_confused",)),
    "explicit_confusion": (1, 1.5, ("question", "confused")),
    "rephrase": (1, 1.2, ("question", "rephrase")),
    "confused_then_rephrase": (1, 0.8, ("question", "confused", "rephrase")),
    "repeated_confusion": (1, 0.8, ("question", "confused", "confused")),
    "confused_after_followup": (1, 0.6, ("question", "followup", "confused")),
    "understood": (0, 1.2, ("question", "ack")),
    "deeper_followup": (0, 1.2, ("question", "followup")),
    "new_topic": (0, 1.0, ("question", "ack", "question2")),
    "quick_next_topic": (0, 0.6, ("question", "question2")),
    "recovered": (0, 0.9, ("question", "confused", "ack")),
    "recovered_then_deeper": (0, 0.6, ("confused", "ack", "followup")),
    "practice_request": (0, 0.7, ("question", "ack", "practice")),
    # A rephrasing-style question is only a rephrasing when it repeats the previous topic:
    # asked first, or about a new topic, it is a plain question.
    "first_question_rephrase_style": (0, 0.7, ("rephrase_new",)),
    "new_topic_rephrase_style": (0, 0.7, ("question", "ack", "rephrase_new")),
}

# message kind -> (median seconds since previous message, log-normal sigma); "confused"
# is a mixture of a quick terse reaction and a long re-reading pause.
GAPS: dict[str, tuple[float, float]] = {
    "question": (60.0, 0.9),
    "question2": (40.0, 0.9),
    "rephrase_new": (40.0, 0.9),
    "first_confused": (60.0, 0.9),
    "ack": (25.0, 0.8),
    "followup": (45.0, 0.8),
    "practice": (25.0, 0.8),
    "rephrase": (90.0, 0.8),
    "confused_quick": (8.0, 0.7),
    "confused_slow": (150.0, 0.7),
}


@dataclass(frozen=True)
class Message:
    text: str
    seconds_since_previous: float | None


@dataclass(frozen=True)
class Conversation:
    """The last (up to 3) student messages, oldest first, and the label after the newest."""

    messages: tuple[Message, ...]
    label: int
    scenario: str


def topic_split(seed: int) -> dict[str, list[str]]:
    """Disjoint topic lists for train / val / test (70/15/15)."""
    topics = sorted(TOPICS)
    random.Random(seed).shuffle(topics)
    n_eval = max(2, round(len(topics) * 0.15))
    return {
        "val": topics[:n_eval],
        "test": topics[n_eval : 2 * n_eval],
        "train": topics[2 * n_eval :],
    }


def _gap(kind: str, rng: random.Random) -> float:
    if kind == "confused":
        kind = "confused_quick" if rng.random() < 0.5 else "confused_slow"
    median, sigma = GAPS[kind]
    return round(min(3600.0, math.exp(math.log(median) + sigma * rng.gauss(0.0, 1.0))), 1)


POOLS: dict[str, list[str]] = {
    "question": QUESTION,
    "first_confused": FIRST_CONFUSED,
    "confused": CONFUSED,
    "rephrase": REPHRASE,
    "ack": ACK,
    "followup": FOLLOWUP,
    "practice": PRACTICE,
}


def template_split(seed: int, part: str) -> dict[str, list[str]]:
    """Each template pool split 70/15/15 like the topics: the test set measures phrasings
    never seen in training too, not just new topics in known sentences."""
    out = {}
    for kind, pool in POOLS.items():
        pool = sorted(pool)
        random.Random(f"{seed}:{kind}").shuffle(pool)
        n_eval = max(1, round(len(pool) * 0.15))
        out[kind] = {"val": pool[:n_eval], "test": pool[n_eval : 2 * n_eval], "train": pool[2 * n_eval :]}[part]
    return out


def _text(kind: str, topic: str, other: str, pools: dict[str, list[str]], rng: random.Random) -> str:
    if kind == "question2":
        return rng.choice(pools["question"]).format(t=other)
    if kind == "rephrase_new":
        return rng.choice(pools["rephrase"]).format(t=other)
    text = rng.choice(pools[kind]).format(t=topic, t2=other)
    return text[0].upper() + text[1:] if rng.random() < 0.3 else text


def simulate(n: int, topics: list[str], seed: int, pools: dict[str, list[str]] | None = None) -> list[Conversation]:
    """n conversations over the given topics and templates, reproducible from the seed."""
    pools = pools or POOLS
    rng = random.Random(seed)
    names = list(SCENARIOS)
    weights = [SCENARIOS[s][1] for s in names]
    out: list[Conversation] = []
    for _ in range(n):
        scenario = rng.choices(names, weights)[0]
        label, _, kinds = SCENARIOS[scenario]
        topic, other = rng.sample(topics, 2)
        messages = []
        for i, kind in enumerate(kinds):
            first = i == 0
            gap = None if first and rng.random() < PRIOR_UNKNOWN_FIRST_GAP else _gap(kind, rng)
            messages.append(Message(_text(kind, topic, other, pools, rng), gap))
        # Sometimes an earlier, unrelated exchange precedes a short scenario in the window.
        if len(messages) < 3 and scenario not in ("first_question", "first_confused") and (rng.random() < 0.35):
            earlier_pool = pools["ack"] + pools["question"]
            earlier = Message(rng.choice(earlier_pool).format(t=rng.choice(topics)), None)
            messages = [earlier, Message(messages[0].text, _gap("question2", rng)), *messages[1:]]
        if rng.random() < LABEL_NOISE:
            label = 1 - label
        out.append(Conversation(tuple(messages), label, scenario))
    return out


def build(seed: int, sizes: dict[str, int] | None = None) -> dict[str, list[Conversation]]:
    """The bootstrap set: train/val/test conversations over disjoint topics."""
    sizes = sizes or {"train": 6000, "val": 1000, "test": 1000}
    topics = topic_split(seed)
    return {
        part: simulate(sizes[part], topics[part], seed * 1000 + i, template_split(seed, part))
        for i, part in enumerate(("train", "val", "test"))
    }


def describe(data: dict[str, list[Conversation]], seed: int) -> dict:
    """The manifest's description of the bootstrap set (how, sizes, mix, hash)."""
    topics = topic_split(seed)
    source = Path(__file__).read_bytes()
    return {
        "source": "bootstrap: simulated tutoring conversations (model_export/confusion_data.py)",
        "how": (
            "scenario-based simulation of the last 3 student messages: confusion cues "
            "(explicit statements, rephrasing the same question, repeated confusion, long "
            "re-reading pauses or instant terse replies) against hard negatives (deeper "
            "follow-ups on the same topic, recovery after confusion, new topics, first "
            "questions, acknowledgements); templates and topics both split 70/15/15, so "
            "validation and test use unseen topics and phrasings; "
            f"{LABEL_NOISE:.0%} of labels flipped; to be replaced by labels from real feedback"
        ),
        "generator_sha256": hashlib.sha256(source).hexdigest(),
        "seed": seed,
        "sizes": {part: len(rows) for part, rows in data.items()},
        "positive_rate": {
            part: round(sum(c.label for c in rows) / max(1, len(rows)), 3) for part, rows in data.items()
        },
        "scenarios": {name: {"label": v[0], "weight": v[1]} for name, v in SCENARIOS.items()},
        "scenario_counts_train": dict(Counter(c.scenario for c in data["train"])),
        "topics": {part: len(v) for part, v in topics.items()},
        "test_topics": topics["test"],
    }
