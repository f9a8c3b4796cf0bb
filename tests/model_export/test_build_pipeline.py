"""The build pipeline end to end on the encoder: gate, publish, point, skip when up to date."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import model_export.build as build_module
from shared.artifacts.store import LocalStore
from shared.artifacts.versions import list_versions, read_current, read_manifest


@pytest.fixture()
def source_tree(monkeypatch, tmp_path: Path) -> Path:
    """A stand-in repository for the fingerprint, so edits elsewhere cannot change it."""
    repo = tmp_path / "repo"
    (repo / "model_export" / "data").mkdir(parents=True)
    (repo / "model_export" / "train.py").write_text("print('train')\n")
    (repo / "model_export" / "data" / "set.tsv").write_text("a\tb\n")
    (repo / "requirements-train.txt").write_text("torch==2.13.0\n")
    monkeypatch.setattr(build_module, "REPO", repo)
    return repo


@pytest.fixture()
def pipeline(monkeypatch, encoder_builder, source_tree, tmp_path: Path):
    from model_export import quantize

    monkeypatch.setattr(build_module, "BUILDERS", {"encoder": encoder_builder})
    # one recipe keeps these tests quick; test_quantize covers the choice between recipes
    monkeypatch.setattr(quantize, "RECIPES", {"fused_per_channel": quantize.RECIPES["fused_per_channel"]})
    store = LocalStore(tmp_path / "store")

    def run(**kw):
        return build_module.build(store=store, work_root=tmp_path / "work", **kw)

    return store, run, encoder_builder


def test_build_publishes_a_checked_version_and_moves_the_pointer(pipeline) -> None:
    store, run, _ = pipeline
    result = run()
    assert result.version == "v1" and not result.up_to_date
    assert read_current(store).version == "v1"
    manifest = read_manifest(store, "v1")
    assert manifest["parent"] is None and manifest["build"]["fingerprint"] == result.fingerprint
    entry = manifest["models"]["encoder"]
    assert entry["file"] == "encoder.onnx"
    assert set(entry["extra_files"]) == {"tokenizer.json", "encoder_config.json"}
    assert entry["int8_check"]["passed"] and entry["int8_check"]["scheme"]
    assert entry["sizes"]["int8_bytes"] < entry["sizes"]["fp32_bytes"] / 3
    assert set(manifest["files"]) == {"encoder.onnx", "tokenizer.json", "encoder_config.json"}

    from shared.models.registry import ModelRegistry

    registry = ModelRegistry(store, cache_dir=store.root.parent / "cache", ttl_s=60)
    vectors = registry.get("encoder").embed(["what is recursion?", "hi"])
    assert vectors.shape == (2, 384)


def test_an_unchanged_build_is_up_to_date_and_trains_nothing(pipeline, capsys) -> None:
    store, run, builder = pipeline
    run()
    assert len(builder.calls) == 1
    again = run()
    assert again.up_to_date and again.version == "v1"
    assert len(builder.calls) == 1, "an up-to-date build must not train or export"
    assert "up to date" in capsys.readouterr().out
    forced = run(force=True)
    assert forced.version == "v2" and read_manifest(store, "v2")["parent"] == "v1"
    assert read_current(store).version == "v2"
    other_seed = run(seed=7)
    assert not other_seed.up_to_date and other_seed.version == "v3"
    builds = [p.name for p in (store.root.parent / "work").iterdir()]
    assert builds == [other_seed.fingerprint[:16]], "older build folders are pruned"


def test_an_int8_model_failing_the_gate_is_never_published(pipeline, monkeypatch) -> None:
    store, run, _ = pipeline
    from model_export import agreement

    monkeypatch.setitem(agreement.THRESHOLDS, "embedding", {"mean_cosine": 0.9999, "min_cosine": 0.9999})
    with pytest.raises(RuntimeError, match="fails the FP32 agreement gate"):
        run()
    assert list_versions(store) == [] and read_current(store) is None


def test_no_promote_publishes_without_moving_the_pointer(pipeline) -> None:
    store, run, _ = pipeline
    run()
    result = run(force=True, promote=False)
    assert result.version == "v2" and read_current(store).version == "v1"


def test_build_keeps_fp32_and_check_feeds_for_the_agreement_benchmark(pipeline, tmp_path) -> None:
    _, run, _ = pipeline
    result = run()
    work = tmp_path / "work" / result.fingerprint[:16]
    feeds = build_module.load_feeds(work / "encoder" / "check_feeds.npz")
    assert feeds and set(feeds[0]) == {"input_ids", "attention_mask", "token_type_ids"}
    assert json.loads((work / "manifest.json").read_text())["version"] == "v1"


def test_the_fingerprint_follows_code_data_and_seed(source_tree: Path) -> None:
    base = build_module.fingerprint(42, ["encoder"])
    assert build_module.fingerprint(42, ["encoder"]) == base
    assert build_module.fingerprint(7, ["encoder"]) != base
    assert build_module.fingerprint(42, ["encoder", "intent"]) != base
    (source_tree / "model_export" / "data" / "set.tsv").write_text("a\tc\n")
    changed_data = build_module.fingerprint(42, ["encoder"])
    assert changed_data != base
    (source_tree / "model_export" / "__pycache__").mkdir()
    (source_tree / "model_export" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"x")
    assert build_module.fingerprint(42, ["encoder"]) == changed_data, "caches do not count"


def test_a_required_model_whose_data_is_missing_publishes_nothing(pipeline, monkeypatch) -> None:
    store, run, encoder_builder = pipeline

    def grader_without_data(work_dir, *, seed):
        exc = FileNotFoundError("SemEval-2013 not found at /nowhere")
        exc.skip_model = True  # what a trainer whose data set is absent raises
        raise exc

    monkeypatch.setattr(build_module, "BUILDERS", {"encoder": encoder_builder, "grader": grader_without_data})
    with pytest.raises(RuntimeError, match=r"grader: SemEval-2013 not found"):
        run(require=["grader"])
    assert read_current(store) is None  # nothing published, no pointer
    assert run().version == "v1"  # without the requirement the same build publishes, grader skipped
