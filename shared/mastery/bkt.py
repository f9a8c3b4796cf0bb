"""Bayesian Knowledge Tracing, closed form, one answer at a time.

pyBKT fits the four parameters offline and replays whole sequences to get a
student's state; serving needs the opposite: keep P(known) per user x topic and
update it in O(1) when one answer arrives. That is two lines of Bayes' rule
plus the learning transition (Corbett & Anderson, 1995):

    posterior  = P(L)(1-S) / (P(L)(1-S) + (1-P(L))G)      after a correct answer
               = P(L)S     / (P(L)S     + (1-P(L))(1-G))  after a wrong one
    P(L) next  = posterior + (1 - posterior) T

Graded short answers give partial credit c in [0, 1] (score / 10; for the
grader model that is its calibrated P(correct)); we treat it as soft evidence
and mix the two posteriors by c (Jeffrey's rule), which reduces to the classic
update at c = 0 and c = 1.

The direction of a change follows the grade: an answer below the pass
mark can only lower P(known) or leave it, one at or above it can only raise it or
leave it, and a fully right answer always raises it. Classic BKT applies the
learning transition after every answer, so below its fixed point (about 0.18 for
the default parameters) a wrong answer RAISED P(known), and a half-right one
(nonsense scored 4-6 by a lenient grader) raised it from 0.2 to 0.39: five of them
gave 0.73. A wrong answer is evidence the skill is not known, not of learning;
the learning transition is credited only as far as the answer shows it. The pass
mark is the grading's "correct" band, 7/10 (`shared.grading.score_mapping`), so
"partially correct" never raises mastery either. The update is monotone in the
credit, so a better answer never leaves a student worse off than a poorer one.
"""

from __future__ import annotations

from dataclasses import dataclass

_EPS = 1e-6
#: credit from which an answer counts as right: the "correct" band (>= 7/10) of grading
PASS_CREDIT = 0.7


@dataclass(frozen=True)
class BKTParams:
    p_init: float = 0.2  # P(L0): known before any practice
    p_learn: float = 0.15  # T: learns it at each opportunity
    p_slip: float = 0.1  # S: knows it, answers wrong
    p_guess: float = 0.2  # G: does not know it, answers right

    def __post_init__(self) -> None:
        for name in ("p_init", "p_learn", "p_slip", "p_guess"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability, got {value}")
        if self.p_slip + self.p_guess >= 1.0:
            # Otherwise a correct answer would be evidence of NOT knowing the skill.
            raise ValueError("p_slip + p_guess must be < 1 for the model to be identifiable")


def posterior(p_known: float, correct: float, params: BKTParams) -> float:
    """P(known | this answer), before the learning transition. `correct` in [0, 1]."""
    if not 0.0 <= correct <= 1.0:
        raise ValueError(f"correct must be in [0, 1], got {correct}")
    p = min(max(p_known, _EPS), 1 - _EPS)
    s, g = params.p_slip, params.p_guess
    if_right = p * (1 - s) / (p * (1 - s) + (1 - p) * g)
    if_wrong = p * s / (p * s + (1 - p) * (1 - g))
    return correct * if_right + (1 - correct) * if_wrong


def update(p_known: float, correct: float | bool, params: BKTParams, *, passed: bool | None = None) -> float:
    """The new P(known) after one answer and one learning opportunity.

    `correct` is the credit in [0, 1]. `passed` says whether the answer counts as right
    (a grader's verdict); by default, whether the credit reaches PASS_CREDIT. A passed
    answer never lowers P(known), any other never raises it."""
    credit = float(correct)
    post = posterior(p_known, credit, params)
    new = post + (1 - post) * params.p_learn
    if passed is None:
        passed = credit >= PASS_CREDIT
    current = min(max(float(p_known), 0.0), 1.0)
    return max(new, current) if passed else min(new, current)


def p_correct(p_known: float, params: BKTParams) -> float:
    """Probability the next answer is correct, the BKT prediction."""
    return p_known * (1 - params.p_slip) + (1 - p_known) * params.p_guess


def level(p_known: float) -> str:
    """The band the behaviour adapter acts on (thresholds are the usual 0.4 / 0.8)."""
    if p_known >= 0.8:
        return "high"
    if p_known < 0.4:
        return "low"
    return "medium"
