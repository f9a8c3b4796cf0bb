"""BKT: the closed-form update against hand-computed values and its invariants."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.mastery.bkt import PASS_CREDIT, BKTParams, level, p_correct, posterior, update
from shared.mastery.store import current_mastery, record_answer

P = BKTParams(p_init=0.2, p_learn=0.15, p_slip=0.1, p_guess=0.2)


def test_update_matches_hand_computation():
    # correct: 0.2*0.9 / (0.2*0.9 + 0.8*0.2) = 0.18/0.34 = 0.529412; + (1-0.529412)*0.15
    assert update(0.2, True, P) == pytest.approx(0.529412 + 0.470588 * 0.15, abs=1e-6)
    # wrong: 0.2*0.1 / (0.2*0.1 + 0.8*0.8) = 0.02/0.66 = 0.030303; + (1-0.030303)*0.15
    assert update(0.2, False, P) == pytest.approx(0.030303 + 0.969697 * 0.15, abs=1e-6)


probabilities = st.floats(min_value=0.0, max_value=1.0)
credits = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def bkt_params(draw: st.DrawFn) -> BKTParams:
    slip = draw(st.floats(min_value=0.0, max_value=0.49))
    guess = draw(st.floats(min_value=0.0, max_value=0.49))
    return BKTParams(p_init=draw(probabilities), p_learn=draw(probabilities), p_slip=slip, p_guess=guess)


@settings(max_examples=500, deadline=None)
@given(probabilities, credits, bkt_params())
def test_the_direction_follows_the_grade(p: float, credit: float, params: BKTParams) -> None:
    """Issue 17: a wrong or half-right answer must never raise mastery; a right one never lowers it."""
    new = update(p, credit, params)
    assert 0.0 <= new <= 1.0
    if credit < PASS_CREDIT:
        assert new <= p
    else:
        assert new >= p


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, max_value=0.99), bkt_params())
def test_a_right_answer_raises_and_a_wrong_one_lowers_or_holds(p: float, params: BKTParams) -> None:
    if params.p_slip + params.p_guess < 0.98:  # otherwise an answer carries (almost) no evidence
        assert update(p, 1.0, params) > p
    assert update(p, 0.0, params) <= p


@settings(max_examples=500, deadline=None)
@given(probabilities, credits, credits, bkt_params())
def test_a_better_answer_never_leaves_a_student_worse_off(p: float, a: float, b: float, params: BKTParams) -> None:
    low, high = sorted((a, b))
    assert update(p, low, params) <= update(p, high, params) + 1e-12


@given(probabilities, credits)
def test_the_graders_verdict_decides_the_direction_when_given(p: float, credit: float) -> None:
    assert update(p, credit, P, passed=False) <= p <= update(p, credit, P, passed=True)


def test_the_pass_mark_is_the_grading_correct_band() -> None:
    from shared.grading.score_mapping import CORRECT_AT

    assert PASS_CREDIT * 10 == CORRECT_AT


def test_five_wrong_or_nonsense_answers_do_not_raise_mastery() -> None:
    """Issue 17: 0.20 -> 0.73 after five wrong or nonsense answers (scores of 0-6.9)."""
    p = P.p_init
    for score in (5.0, 6.5, 0.0, 4.0, 6.9):
        new = update(p, score / 10, P)
        assert new <= p
        p = new
    assert p <= P.p_init
    low = 0.05  # below BKT's fixed point, where the learning transition alone used to raise it
    assert update(low, 0.0, P) <= low


def test_partial_credit_interpolates_between_the_two_posteriors():
    half = posterior(0.5, 0.5, P)
    assert posterior(0.5, 0.0, P) < half < posterior(0.5, 1.0, P)
    assert half == pytest.approx((posterior(0.5, 0.0, P) + posterior(0.5, 1.0, P)) / 2)


def test_streaks_converge_and_stay_in_bounds():
    p = P.p_init
    for _ in range(30):
        p = update(p, True, P)
    assert 0.99 < p < 1.0
    for _ in range(30):
        p = update(p, False, P)
    # Wrong answers lower it down to BKT's fixed point (learning balances the evidence)
    # and hold it there: they never raise it.
    assert P.p_learn <= p < 0.5
    assert update(p, False, P) <= p


def test_p_correct_and_levels():
    assert p_correct(1.0, P) == pytest.approx(0.9)
    assert p_correct(0.0, P) == pytest.approx(0.2)
    assert [level(x) for x in (0.1, 0.5, 0.9)] == ["low", "medium", "high"]


@pytest.mark.parametrize("kw", [{"p_init": 1.5}, {"p_slip": 0.6, "p_guess": 0.5}])
def test_invalid_params_rejected(kw):
    with pytest.raises(ValueError):
        BKTParams(**kw)


def test_invalid_evidence_rejected():
    with pytest.raises(ValueError):
        update(0.5, 1.5, P)


@pytest.fixture()
def topic(db):
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO users (id) VALUES ('alice')"))
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        conn.execute(sa.text("INSERT INTO topics (id, course_id, title) VALUES ('t', 'c', 'T')"))
    return "t"


def test_record_answer_persists_the_sequence(db, topic):
    expected = P.p_init
    for correct in (True, True, False, True):
        expected = update(expected, correct, P)
        with db.begin() as conn:
            got = record_answer(conn, "alice", topic, correct)
        assert got == pytest.approx(expected, rel=1e-5)
    with db.connect() as conn:
        assert current_mastery(conn, "alice", topic) == pytest.approx(expected, rel=1e-5)
        assert conn.execute(sa.text("SELECT n_updates FROM mastery_state")).scalar() == 4
        assert current_mastery(conn, "nobody", topic) == pytest.approx(P.p_init)
        assert current_mastery(conn, "alice", "no-such-topic") is None


def test_concurrent_answers_all_count(db, topic):
    errors = []

    def answer():
        try:
            with db.begin() as conn:
                record_answer(conn, "alice", topic, True)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=answer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = P.p_init
    for _ in range(4):
        expected = update(expected, True, P)
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT p_mastery, n_updates FROM mastery_state")).one()
    assert row.n_updates == 4 and row.p_mastery == pytest.approx(expected, rel=1e-5)


def test_record_answer_unknown_topic(db):
    with pytest.raises(LookupError), db.begin() as conn:
        record_answer(conn, "alice", "nope", True)


def test_student_on_topic_reads_profile_and_mastery_together(db):
    """One statement for the profile and the topic's mastery: the prior until an answer."""
    from shared.mastery.store import student_on_topic
    from shared.personalisation import Profile

    topic = "t-student"
    with db.begin() as conn:
        conn.execute(sa.text("INSERT INTO courses (id, title) VALUES ('c', 'C')"))
        conn.execute(
            sa.text("INSERT INTO topics (id, course_id, title, bkt_p_init) VALUES (:t, 'c', 'T', 0.3)"), {"t": topic}
        )
        nobody = student_on_topic(conn, "nobody", topic)
        assert nobody == type(nobody)(None, pytest.approx(0.3), False)
        conn.execute(sa.text("INSERT INTO users (id, level, grade) VALUES ('bob', 'advanced', 9)"))
        assert student_on_topic(conn, "bob", None) == type(nobody)(Profile("advanced", None, 9), None, False)
        record_answer(conn, "bob", topic, True)
        bob = student_on_topic(conn, "bob", topic)
        assert bob.measured and bob.mastery == pytest.approx(current_mastery(conn, "bob", topic))
        assert student_on_topic(conn, "bob", "no-such-topic").mastery is None
