"""INT8 quantization of the real encoder: the chosen recipe passes the gate, by measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_export.agreement import compare
from model_export.quantize import RECIPES, quantize, quantize_best


def test_best_recipe_passes_the_gate_and_shrinks_the_model(exported_encoder, tmp_path: Path) -> None:
    path, agreement, recipes = quantize_best(exported_encoder, tmp_path)
    assert agreement.passed, agreement.summary()
    assert agreement.scheme in recipes and recipes[agreement.scheme]["passed"]
    assert agreement.values["mean_cosine"] >= 0.98
    assert path.stat().st_size < exported_encoder.fp32_onnx.stat().st_size / 3
    # every recipe was measured, and the chosen one scores best
    measured = {r: v for r, v in recipes.items() if "values" in v}
    assert len(measured) >= 2
    unsigned = {r: RECIPES[r][1] for r in measured}
    best = max(measured, key=lambda r: (measured[r]["passed"], not unsigned[r], sum(measured[r]["values"].values())))
    assert best == agreement.scheme
    # only the chosen file is left behind
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_per_channel_beats_per_tensor_on_minilm(exported_encoder, tmp_path: Path) -> None:
    """The measurement behind the recipe choice (issue: 0.993 vs 0.960 mean cosine)."""
    feeds, fp32 = exported_encoder.check_feeds, exported_encoder.fp32_onnx
    channel = compare(fp32, quantize(fp32, tmp_path / "c.onnx", per_channel=True), feeds, "embedding")
    tensor = compare(fp32, quantize(fp32, tmp_path / "t.onnx", per_channel=False), feeds, "embedding")
    assert channel.values["mean_cosine"] > tensor.values["mean_cosine"]
    assert channel.values["min_cosine"] > tensor.values["min_cosine"]


# Measured on an AVX2 machine (session 12): the intent model's fused graph agreed more on
# average but failed the gate on its worst row; the grader passed only with unsigned weights.
_INTENT = {
    "fused_per_channel": {"argmax_agreement": 1.0, "max_prob_diff": 0.2835, "mean_prob_diff": 0.0109},
    "raw_per_channel": {"argmax_agreement": 1.0, "max_prob_diff": 0.2352, "mean_prob_diff": 0.0121},
    "fused_per_channel_u8": {"argmax_agreement": 1.0, "max_prob_diff": 0.2071, "mean_prob_diff": 0.0114},
    "raw_per_channel_u8": {"argmax_agreement": 1.0, "max_prob_diff": 0.1498, "mean_prob_diff": 0.0089},
}
_GRADER = {
    "fused_per_channel": {"argmax_agreement": 0.9580, "max_prob_diff": 0.2530, "mean_prob_diff": 0.0323},
    "raw_per_channel": {"argmax_agreement": 0.9528, "max_prob_diff": 0.3179, "mean_prob_diff": 0.0338},
    "fused_per_channel_u8": {"argmax_agreement": 0.9685, "max_prob_diff": 0.2369, "mean_prob_diff": 0.0231},
    "raw_per_channel_u8": {"argmax_agreement": 0.9633, "max_prob_diff": 0.1856, "mean_prob_diff": 0.0244},
}


@pytest.mark.parametrize(
    ("measured", "chosen", "tried"),
    [
        # a failing recipe loses to a passing one however much closer it is on average, and
        # a passing 7-bit recipe beats unsigned 8-bit ones that would agree more (faster
        # kernels): those are not even tried
        (_INTENT, "raw_per_channel", {"fused_per_channel", "raw_per_channel"}),
        # no 7-bit recipe passes: the unsigned one that agrees best
        (_GRADER, "fused_per_channel_u8", set(_GRADER)),
    ],
)
def test_the_choice_passes_the_gate_then_prefers_7_bit_then_agreement(
    monkeypatch, tmp_path: Path, measured: dict, chosen: str, tried: set[str]
) -> None:
    import numpy as np

    from model_export import quantize as q
    from model_export.agreement import Agreement, gate
    from model_export.trained import LOGITS, TrainedModel

    def fake_quantize(src: Path, dst: Path, *, fused: bool, unsigned_weights: bool, **_: object) -> Path:
        dst.write_text(next(r for r, v in q.RECIPES.items() if v == (fused, unsigned_weights)))
        return dst

    def fake_compare(fp32: Path, int8: Path, feeds: list, kind: str) -> Agreement:
        values = measured[int8.read_text()]
        return Agreement(kind=kind, rows=62, values=values, failures=gate(kind, values))

    monkeypatch.setattr(q, "quantize", fake_quantize)
    monkeypatch.setattr(q, "compare", fake_compare)
    fp32 = tmp_path / "model.onnx"
    fp32.write_text("fp32")
    model = TrainedModel("intent", fp32, [], {}, {}, [{"input_ids": np.zeros((1, 4), np.int64)}], LOGITS)
    out = tmp_path / "int8"
    out.mkdir()
    path, agreement, report = q.quantize_best(model, out)
    assert agreement.scheme == chosen and agreement.passed
    assert set(report) == set(q.RECIPES)
    assert {r for r, v in report.items() if "values" in v} == tried
    assert all("skipped" in report[r] for r in set(q.RECIPES) - tried)
    assert [p.name for p in out.iterdir()] == [path.name]
