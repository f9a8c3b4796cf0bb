"""Turning an LLM's text into a validated pydantic object, or refusing to.

Models wrap JSON in code fences, add a sentence before it, or trail a comment after
it. Those are repaired here (strip fences, take the first balanced JSON value);
anything that still does not parse and validate raises, so a malformed answer never
reaches a student.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


class InvalidJsonAnswer(ValueError):
    """The text holds no JSON value that validates against the schema."""


def extract_json(text: str) -> Any:
    """The first JSON object (or array) in `text`, after removing code fences."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for candidate in candidates:
        candidate = candidate.strip()
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            pass
        value = _first_balanced(candidate)
        if value is not None:
            return value
    raise InvalidJsonAnswer("no JSON object found in the answer")


def _first_balanced(text: str) -> Any:
    """Scan for '{' or '[' and let the JSON decoder find where the value ends."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _end = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                continue
            return value
    return None


def parse_as(text: str, schema: type[M]) -> M:
    value = extract_json(text)
    try:
        return schema.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidJsonAnswer(f"JSON does not match the schema: {problems}") from None


def json_instruction(schema: type[BaseModel]) -> str:
    """Appended to the system prompt: every provider gets the same contract in words."""
    return (
        "Answer with a single JSON object and nothing else (no code fences, no commentary). "
        "It must validate against this JSON Schema:\n" + json.dumps(schema.model_json_schema(), separators=(",", ":"))
    )
