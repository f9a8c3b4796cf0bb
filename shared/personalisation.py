"""How a student's profile bends the writer's instructions: level, learning style, grade.

One home for these texts, used by the chat prompt book (`shared/chat/prompt_book.py:
adapt`) and by content generation (`shared/content/generator.py`). The values are a
closed set (the database checks them too), so nothing a student types reaches a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Level = Literal["beginner", "intermediate", "advanced"]
Style = Literal["visual", "verbal", "examples", "step_by_step"]

LEVELS: tuple[Level, ...] = ("beginner", "intermediate", "advanced")
STYLES: tuple[Style, ...] = ("visual", "verbal", "examples", "step_by_step")
#: school grades a profile may name (null: not at school, e.g. university or adult learners)
GRADES = range(1, 13)

STYLE_HINTS: dict[str, str] = {
    "visual": "Describe a picture or diagram in words (arrows, boxes, a table) to show the idea.",
    "verbal": "Explain in clear prose, building the idea step by step in words.",
    "examples": "Lead with a concrete worked example, then state the general rule.",
    "step_by_step": "Use a numbered sequence of small steps.",
}
LEVEL_HINTS: dict[str, str] = {
    "beginner": "The student is a beginner: define every term and avoid jargon.",
    "intermediate": "The student knows the basics: be concise and connect to what they know.",
    "advanced": "The student is advanced: go deeper, mention edge cases and common pitfalls.",
}


@dataclass(frozen=True)
class Profile:
    """What a student told us about themselves (all optional)."""

    level: Level | None = None
    learning_style: Style | None = None
    grade: int | None = None


def grade_hint(grade: int | None) -> str | None:
    if grade is None:
        return None
    if grade <= 5:
        return f"The student is in school grade {grade}: short sentences, everyday words, familiar examples."
    if grade <= 8:
        return f"The student is in school grade {grade}: plain language; introduce each technical term once."
    return f"The student is in school grade {grade}: examples a high-school student knows."


def profile_hints(profile: Profile | None, *, with_level: bool = True) -> list[str]:
    """The instructions a profile adds; `with_level=False` when measured mastery decides the level."""
    if profile is None:
        return []
    hints: list[str] = []
    if with_level and profile.level in LEVEL_HINTS:
        hints.append(LEVEL_HINTS[profile.level])
    if profile.learning_style in STYLE_HINTS:
        hints.append(STYLE_HINTS[profile.learning_style])
    grade = grade_hint(profile.grade)
    if grade:
        hints.append(grade)
    return hints
