"""BKT: the closed-form update against hand-computed values and its invariants."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from shared.mastery.bkt import BKTParams, level, p_correct, posterior, update
from shared.mastery.store import current_mastery, record_answer

P = BKTParams(p_init=0.2, p_learn=0.15, p_slip=0.1, p_guess=0.2)


def test_update_matches_hand_computation():
    # correct: 0.2*0.9 / (0.2*0.9 + 0.8*0.2) = 0.18/0.34 = 0.529412; + (1-0.529412)*0.15
    assert update(0.2, True, P) == pytest.approx(0.529412 + 0.470588 * 0.15, abs=1e-6)
    # wrong: 0.2*0.1 / (0.2*0.1 + 0.8*0.8) = 0.02/0.66 = 0.030303; + (1-0.030303)*0.15
    assert update(0.2, False, P) == pytest.approx(0.030303 + 0.969697 * 0.15, abs=1e-6)


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
    # Learning never lets it drop below T's floor after an update.
    assert P.p_learn <= p < 0.5


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
