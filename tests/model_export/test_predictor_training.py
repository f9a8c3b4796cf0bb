"""Predictor training: DKT parsing, the split, features, ONNX export, INT8, the serving class.

Runs in .venv-train (torch). To stay fast it trains on a small simulated DKT file
(students whose chance of success rises with practice and differs by skill) instead of
ASSISTments; the real data set is used by benchmarks/bench_predictor_assistments.py and
by the build.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from model_export.predictor_data import (
    PredictorDataMissing,
    assistments_path,
    read_dkt,
    skill_difficulty,
    split_students,
    to_rows,
)
from model_export.train_predictor import (
    META_FILE,
    PredictorConfig,
    feeds_of,
    predict,
    prepare,
    train,
)
from model_export.trained import TrainedModel
from model_export.training import roc_auc


def _write_dkt(path: Path, n_students: int = 160, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    skill_ease = rng.normal(0.5, 1.0, size=8)
    lines = []
    for _ in range(n_students):
        ability = rng.normal(0, 1)
        n = int(rng.integers(8, 60))
        skills = rng.integers(0, 8, size=n)
        practice = np.zeros(8)
        answers = []
        for s in skills:
            p = 1 / (1 + math.exp(-(ability + skill_ease[s] + 0.3 * practice[s] - 0.5)))
            answers.append(int(rng.random() < p))
            practice[s] += 1
        lines += [f"{n}", ",".join(map(str, skills)) + ",", ",".join(map(str, answers)) + ","]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_missing_data_is_reported_so_the_build_can_skip(tmp_path: Path) -> None:
    with pytest.raises(PredictorDataMissing):
        assistments_path(tmp_path)


def test_dkt_parsing_and_a_split_by_student(tmp_path: Path) -> None:
    path = tmp_path / "dkt.csv"
    path.write_text("3\n5,5,7,\n1,0,1,\n2\n7,9\n0,0\n")
    seqs = read_dkt(path)
    assert [(s.user, s.topics, s.correct) for s in seqs] == [
        ("a:0", ["a:5", "a:5", "a:7"], [1.0, 0.0, 1.0]),
        ("a:1", ["a:7", "a:9"], [0.0, 0.0]),
    ]
    many = read_dkt(_write_dkt(tmp_path / "sim.csv"))
    train_part, val_part = split_students(many, 0.25, seed=1)
    assert not {s.user for s in train_part} & {s.user for s in val_part}
    assert len(val_part) == 40 and len(train_part) + len(val_part) == len(many)
    difficulty = skill_difficulty(train_part)
    assert set(difficulty.values()) <= {1, 2, 3, 4, 5} and len(set(difficulty.values())) > 2


def test_ragged_records_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("3\n5,5,\n1,0,1,\n")
    with pytest.raises(ValueError, match="ragged"):
        read_dkt(path)


def test_held_out_students_are_new_users(tmp_path: Path) -> None:
    prepared = prepare(read_dkt(_write_dkt(tmp_path / "sim.csv")), seed=3, val_fraction=0.1, test_fraction=0.2)
    assert prepared.test is not None
    assert (prepared.test.user == 0).all() and (prepared.val.user == 0).all()
    assert (prepared.train.user > 0).all()
    assert not np.isnan(prepared.train.log_seconds).any()  # simulated times, see predictor_data


def test_train_export_quantize_and_serve(tmp_path: Path) -> None:
    from model_export.quantize import quantize_best
    from shared.models.predictor import PredictorModel

    data = _write_dkt(tmp_path / "sim.csv", n_students=240)
    trained = train(tmp_path / "work", seed=5, config=PredictorConfig(seed=5, epochs=4, batch_size=256), data_path=data)
    assert trained.name == "predictor" and trained.output_kind == "logit"
    test_metrics = trained.metrics["test"]
    assert test_metrics["correct"]["auc"] > 0.65  # the simulated students are predictable
    assert test_metrics["time"]["mae_log_seconds"] < test_metrics["time"]["mae_log_seconds_constant_median"]
    assert "SIMULATED" in json.dumps(trained.data)

    int8, agreement, _ = quantize_best(trained, tmp_path / "int8")
    assert agreement.passed, agreement.failures
    version = tmp_path / "version"
    version.mkdir()
    shutil.copyfile(int8, version / "predictor.onnx")
    shutil.copyfile(tmp_path / "work" / META_FILE, version / META_FILE)
    served = PredictorModel(version, {"file": "predictor.onnx"}, threads=1)

    meta = json.loads((version / META_FILE).read_text())
    user = next(iter(meta["users"]))
    topic = next(iter(meta["topics"]))
    assert served.known(user, topic) == {"user": True, "topic": True}
    assert served.known("product-user", "py-loops") == {"user": False, "topic": False}

    # INT8 serving agrees with the FP32 session on both heads for check rows
    import onnxruntime as ort

    fp32 = ort.InferenceSession(str(trained.fp32_onnx), providers=["CPUExecutionProvider"])
    feed = trained.check_feeds[0]
    logit32, seconds32 = fp32.run(None, feed)
    logit8, seconds8 = served.session.run(feed)[:2]
    p32, p8 = 1 / (1 + np.exp(-logit32)), 1 / (1 + np.exp(-logit8))
    assert np.abs(p32 - p8).max() < 0.1
    assert np.median(np.abs(np.log(seconds8) - np.log(seconds32))) < 0.1

    # an unknown id is row 0, exactly as the network saw masked ids in training; no
    # attempts is an all-padding sequence
    features = feed["features"][0]
    p_unknown, s_unknown = served.predict("someone-new", "unseen-topic", 3, features)
    logit0, _ = fp32.run(
        None,
        {
            "user": np.array([0]),
            "topic": np.array([0]),
            "difficulty": np.array([3]),
            "features": features[None, :],
            "recent_topic": np.zeros((1, served.recent_window), dtype=np.int64),
            "recent": np.zeros((1, served.recent_window, 3), dtype=np.float32),
        },
    )
    assert abs(p_unknown - 1 / (1 + math.exp(-float(logit0[0])))) < 0.1
    assert 0 < s_unknown < 4 * 3600 and 0 < p_unknown < 1


def test_the_model_reads_history(tmp_path: Path) -> None:
    """Same user, topic and difficulty: a history of successes predicts success."""
    from shared.prediction.features import RunningHistory, encode, encode_recent

    data = _write_dkt(tmp_path / "sim.csv", n_students=240)
    prepared = prepare(read_dkt(data), seed=2, val_fraction=0.1, test_fraction=0.1)
    from model_export.train_predictor import fit

    model, _ = fit(
        prepared.train,
        prepared.val,
        len(prepared.users),
        len(prepared.topics),
        PredictorConfig(seed=2, epochs=3, batch_size=256),
    )
    good, bad = RunningHistory(), RunningHistory()
    for _ in range(12):
        good.add("a:1", 3, 1.0, 20.0)
        bad.add("a:1", 3, 0.0, 90.0)
    rows = prepared.test.take(np.arange(2))
    rows.user[:] = 0
    rows.topic[:] = prepared.topics["a:1"]
    rows.difficulty[:] = 3
    rows.features[0] = encode(good.features("a:1", 3))
    rows.features[1] = encode(bad.features("a:1", 3))
    for i, history in enumerate((good, bad)):
        ids, rows.recent[i] = encode_recent(history.recent_attempts(), "a:1")
        rows.recent_topic[i] = [prepared.topics.get(k, 0) if k else 0 for k in ids]
    p, seconds = predict(model, rows)
    assert p[0] > p[1] + 0.2
    assert seconds[0] < seconds[1]
    assert roc_auc(prepared.test.correct, predict(model, prepared.test)[0]) > 0.6
    assert set(feeds_of(rows)) == {"user", "topic", "difficulty", "features", "recent_topic", "recent"}


def _publish(trained: TrainedModel, folder: Path) -> Path:
    folder.mkdir()
    shutil.copyfile(trained.fp32_onnx, folder / "predictor.onnx")
    shutil.copyfile(trained.fp32_onnx.parent / META_FILE, folder / META_FILE)
    return folder


@pytest.mark.parametrize("attention_dim", [0, 8])
def test_serving_reads_the_sequence_exactly_as_training_built_it(tmp_path: Path, attention_dim: int) -> None:
    """PredictorModel fed from the raw history (ids, features, recent attempts) answers
    what the graph answers on the training rows of the same student: no drift between
    `to_rows` and the serving path, with the topic attention over the steps too."""
    from shared.models.predictor import PredictorModel
    from shared.prediction.features import RunningHistory, encode

    data = _write_dkt(tmp_path / "sim.csv", n_students=120)
    config = PredictorConfig(seed=4, epochs=1, batch_size=256, attention_dim=attention_dim)
    trained = train(tmp_path / "work", seed=4, config=config, data_path=data)
    served = PredictorModel(_publish(trained, tmp_path / "version"), {"file": "predictor.onnx"}, threads=1)
    assert served.recent_window == PredictorConfig.window
    sequences = read_dkt(data)
    prepared = prepare(sequences, seed=4, val_fraction=0.1, test_fraction=0.1)
    student = sequences[0]
    rows = to_rows([student], prepared.users, prepared.topics)
    expected = served.session.run(feeds_of(rows))[0]
    history = RunningHistory()
    got = []
    assert student.difficulty is not None and student.seconds is not None  # filled in by prepare
    for topic, difficulty, credit, seconds in zip(
        student.topics, student.difficulty, student.correct, student.seconds, strict=True
    ):
        p, _ = served.predict(
            student.user,
            topic,
            difficulty,
            encode(history.features(topic, difficulty)),
            recent=history.recent_attempts(),
        )
        got.append(p)
        history.add(topic, difficulty, credit, seconds)
    assert np.allclose(got, 1 / (1 + np.exp(-expected.astype(np.float64))), atol=1e-5)


def test_the_sequence_changes_the_answer(tmp_path: Path) -> None:
    """Two students whose 11 aggregate features are identical, with the same answers in
    a different order (the newest right vs the newest wrong): only the sequence input
    tells them apart, and it does."""
    from shared.models.predictor import PredictorModel
    from shared.prediction.features import RunningHistory, encode

    data = _write_dkt(tmp_path / "sim.csv", n_students=240)
    trained = train(tmp_path / "work", seed=6, config=PredictorConfig(seed=6, epochs=3, batch_size=256), data_path=data)
    served = PredictorModel(_publish(trained, tmp_path / "version"), {"file": "predictor.onnx"}, threads=1)
    newest_right, newest_wrong = RunningHistory(), RunningHistory()
    for credit in (0.0, 0.0, 1.0, 1.0, 1.0):
        newest_right.add("a:2", 3, credit, None)
    for credit in (1.0, 1.0, 1.0, 0.0, 0.0):
        newest_wrong.add("a:2", 3, credit, None)
    features = encode(newest_right.features("a:2", 3))
    assert features.tolist() == encode(newest_wrong.features("a:2", 3)).tolist()
    p_right, _ = served.predict("u", "a:2", 3, features, recent=newest_right.recent_attempts())
    p_wrong, _ = served.predict("u", "a:2", 3, features, recent=newest_wrong.recent_attempts())
    p_none, _ = served.predict("u", "a:2", 3, features)
    assert abs(p_right - p_wrong) > 1e-3 and abs(p_right - p_none) > 1e-3


def test_a_version_without_the_sequence_input_is_still_served(tmp_path: Path) -> None:
    """A version published before the sequence input (recent_window absent) loads and
    answers: serving sends no sequence feeds to a graph that does not take them."""
    from shared.models.predictor import PredictorModel

    data = _write_dkt(tmp_path / "sim.csv", n_students=80)
    trained = train(
        tmp_path / "work", seed=3, config=PredictorConfig(seed=3, epochs=1, batch_size=256, step_dim=0), data_path=data
    )
    folder = _publish(trained, tmp_path / "version")
    meta = json.loads((folder / META_FILE).read_text())
    for key in ("recent_window", "recent_step_features", "recent_encoding"):
        meta.pop(key)
    (folder / META_FILE).write_text(json.dumps(meta))
    served = PredictorModel(folder, {"file": "predictor.onnx"}, threads=1)
    assert served.recent_window == 0
    p, seconds = served.predict("u", "a:1", 3, np.full(11, 0.5, dtype=np.float32), recent=[("a:1", 1.0)])
    assert 0 < p < 1 and seconds > 0
    # the retraining gate scores such a parent on new data too
    from model_export.retrain import predictor_auc

    assert 0.5 < predictor_auc(folder, {"file": "predictor.onnx"}, read_dkt(data)) <= 1.0


def _write_attempts(path: Path, n_users: int = 80, per_user: int = 30, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = []
    for u in range(n_users):
        ability = rng.normal(0, 1)
        speed = rng.normal(0, 0.4)
        for _ in range(per_user):
            topic = f"py-{rng.integers(4)}"
            level = int(rng.integers(1, 6))
            p = 1 / (1 + math.exp(-(ability - 0.4 * (level - 3))))
            seconds = float(np.exp(np.log(40) + 0.25 * (level - 3) - speed + rng.normal(0, 0.3)))
            lines.append(
                json.dumps(
                    {
                        "user_id": f"user-{u}",
                        "topic_id": topic,
                        "difficulty": level,
                        "credit": float(rng.random() < p),
                        "time_seconds": seconds,
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_product_attempts_alone_train_a_model_that_knows_product_ids(tmp_path: Path) -> None:
    attempts = _write_attempts(tmp_path / "attempts.jsonl")
    trained = train(
        tmp_path / "work",
        seed=1,
        config=PredictorConfig(seed=1, epochs=3, batch_size=256),
        data_path=tmp_path / "absent.csv",
        attempts_path=attempts,
    )
    meta = json.loads((tmp_path / "work" / META_FILE).read_text())
    assert any(u.startswith("user-") for u in meta["users"]) and "py-1" in meta["topics"]
    assert meta["time_head_trained_on"] == "real product attempt times"
    assert trained.data["product_attempts"] == 2400 and trained.data["source"] is None
    # real times carry signal the time head picks up (per-user speed, difficulty)
    t = trained.metrics["test"]["time"]
    assert t["mae_log_seconds"] < t["mae_log_seconds_constant_median"]


def test_no_data_at_all_is_reported_so_the_build_can_skip(tmp_path: Path) -> None:
    few = _write_attempts(tmp_path / "few.jsonl", n_users=3, per_user=5)
    with pytest.raises(PredictorDataMissing):
        train(tmp_path / "work", data_path=tmp_path / "absent.csv", attempts_path=few)
