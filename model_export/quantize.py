"""Dynamic INT8 quantization of an FP32 ONNX graph, choosing the recipe by measurement.

Weights of MatMul/Gemm/GRU nodes become INT8; activations are quantized on the fly, so
no calibration data is needed. Several recipes are tried, each measured against FP32 on
the model's held-out check feeds:
- the graph as exported, or first fused by onnxruntime's transformer optimizer
  (Attention, SkipLayerNorm, BiasGelu), which keeps LayerNorm/softmax math in FP32
  kernels and quantizes only the projection weights;
- signed 7-bit weights (U8S8 kernels, VNNI's where the CPU has it) or unsigned 8-bit
  weights (U8U8 kernels: more precise, ~25% slower on AVX2, no VNNI instruction).
Weight scales are per channel: per tensor (optimum's avx512_vnni default) dropped the
encoder to cosine 0.958 mean / 0.876 min against FP32, below the gate. The choice is
made anew on every build rather than trusted, and recorded in the manifest: of the
recipes that pass the gate, a 7-bit one if any passes (the faster kernels), else an
8-bit unsigned one, and within a kind the one that agrees best.

Both kinds compute the same numbers on every x86 CPU, which plain signed 8-bit weights
do not. Activations are unsigned 8-bit; with signed weights onnxruntime's U8S8 kernels
accumulate the products exactly with VNNI (and in the SSE fallback), but AVX2 and
AVX-512 without VNNI add them in pairs into 16 bits with saturation (`vpmaddubsw`), and
255 * 127 * 2 overflows 16 bits. With weights in [-64, 63] (`reduce_range`) a pair stays
within 255 * 64 * 2 = 32,640; the U8U8 kernels widen to 16 bits before multiplying.
Measured on the encoder (docs/models.md): with signed 8-bit weights the fused graph's
embeddings on an AVX2 CPU and on the exact path differ by cosine 0.9885 mean / 0.9488
min, so a model that passed the gate on the build host could fail it on another (the
build failed on AVX2 machines), and vectors stored by one machine met queries embedded
by another; with either kind here the two agree to 0.9999 / 0.999.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import onnx
from onnxruntime.quantization import QuantType, quantize_dynamic

from model_export.agreement import Agreement, compare
from model_export.trained import TrainedModel

log = logging.getLogger(__name__)

#: recipe name -> (fuse transformer patterns first, unsigned 8-bit weights instead of
#: signed 7-bit ones); weight scales are per channel. Listed in order of preference.
RECIPES: dict[str, tuple[bool, bool]] = {
    "fused_per_channel": (True, False),
    "raw_per_channel": (False, False),
    "fused_per_channel_u8": (True, True),
    "raw_per_channel_u8": (False, True),
}


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime's quantizer logs a line per tensor (and a pre-processing hint) on root."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def fuse(src: Path, dst: Path) -> bool:
    """Write src fused by onnxruntime's BERT optimizer to dst; False if it does not apply.

    Heads and hidden size are detected from the graph, so the same call serves the
    encoder and a fine-tuned MiniLM classifier; a graph with nothing to fuse (a GRU)
    comes out equivalent and the measurement decides whether it is kept.
    """
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        with _quiet():
            model = optimize_model(str(src), model_type="bert", num_heads=0, hidden_size=0, opt_level=1)
            model.save_model_to_file(str(dst))
        return True
    except Exception as exc:  # noqa: BLE001 - fusion is an optimisation only
        log.warning("transformer fusion does not apply to %s: %s", src.name, exc)
        return False


def quantize(
    src: Path, dst: Path, *, per_channel: bool = True, fused: bool = False, unsigned_weights: bool = False
) -> Path:
    """Write the dynamic-INT8 version of `src` (optionally fused first) to `dst`: weights
    signed 7-bit, or unsigned 8-bit with `unsigned_weights` (both saturation-free)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        if not (fused and fuse(src, prepared)):
            shutil.copyfile(src, prepared)
        with _quiet():
            quantize_dynamic(
                prepared,
                dst,
                per_channel=per_channel,
                reduce_range=not unsigned_weights,  # 7 bits for signed weights: no pair saturates
                weight_type=QuantType.QUInt8 if unsigned_weights else QuantType.QInt8,
                # fused contrib ops defeat ONNX type inference; their outputs are float
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
    onnx.checker.check_model(str(dst))
    return dst


def quantize_best(model: TrainedModel, out_dir: Path) -> tuple[Path, Agreement, dict[str, dict]]:
    """Quantize, measure each recipe against FP32, keep the best: of the recipes that
    pass the gate, a 7-bit one if any passes, else an unsigned 8-bit one, and within a
    kind the one that agrees most (a failing one only when none passes, and then the
    build refuses it). The unsigned recipes are only tried when no 7-bit one passes:
    they could not be chosen otherwise (on the grader they cost ~40 s of the build).

    Returns the chosen INT8 file, its agreement (with `.scheme` set to the recipe), and
    the measurements of every recipe (or why it was not tried), for the manifest. A
    recipe that fails to produce a runnable graph is recorded as such and skipped.
    """
    results: dict[str, tuple[Path, Agreement]] = {}
    report: dict[str, dict] = {}
    for recipe, (fused, unsigned_weights) in sorted(RECIPES.items(), key=lambda item: item[1][1]):
        if unsigned_weights and any(a.passed and not RECIPES[r][1] for r, (_, a) in results.items()):
            report[recipe] = {"skipped": "a 7-bit recipe passed the gate"}
            continue
        path = out_dir / f"{model.name}.{recipe}.int8.onnx"
        try:
            quantize(model.fp32_onnx, path, fused=fused, unsigned_weights=unsigned_weights)
            agreement = compare(model.fp32_onnx, path, model.check_feeds, model.output_kind)
        except Exception as exc:  # noqa: BLE001 - one broken recipe must not stop the others
            log.warning("%s %s failed: %s", model.name, recipe, exc)
            report[recipe] = {"error": str(exc)[:500]}
            path.unlink(missing_ok=True)
            continue
        agreement.scheme = recipe
        results[recipe] = (path, agreement)
        report[recipe] = agreement.as_dict() | {"size": path.stat().st_size}
        log.info("%s %s: %s", model.name, recipe, agreement.summary())
    if not results:
        raise RuntimeError(f"no INT8 recipe produced a runnable {model.name} graph")
    # passing the gate first, however close a failure; then the faster kind; then agreement
    best = max(results, key=lambda r: (results[r][1].passed, not RECIPES[r][1], results[r][1].score))
    for recipe, (path, _) in results.items():
        if recipe != best:
            path.unlink(missing_ok=True)
    path, agreement = results[best]
    return path, agreement, report
