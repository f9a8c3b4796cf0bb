"""Repairing an LLM's JSON answer when that is safe, refusing it otherwise."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from shared.llm.structured import InvalidJsonAnswer, extract_json, json_instruction, parse_as


class Item(BaseModel):
    name: str
    score: int


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "a", "score": 3}',
        '```json\n{"name": "a", "score": 3}\n```',
        '```\n{"name": "a", "score": 3}\n```',
        'Here you go: {"name": "a", "score": 3} Hope this helps!',
        'Thinking {not json} then {"name": "a", "score": 3}',
    ],
    ids=["plain", "json-fence", "bare-fence", "prose-around", "junk-braces-first"],
)
def test_repairable_answers_parse(text: str) -> None:
    assert parse_as(text, Item) == Item(name="a", score=3)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("no json at all", "no JSON"),
        ('{"name": "a", "score": 3', "no JSON"),  # truncated
        ('{"name": "a"}', "score"),
        ('{"name": "a", "score": "many"}', "score"),
    ],
)
def test_unrepairable_answers_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidJsonAnswer, match=reason):
        parse_as(text, Item)


def test_arrays_are_found_too() -> None:
    assert extract_json("result: [1, 2, 3]") == [1, 2, 3]


def test_instruction_carries_the_schema() -> None:
    text = json_instruction(Item)
    assert '"score"' in text and "single JSON object" in text
