"""Every integer product in the published INT8 models is exact on every x86 kernel.

The build quantizes weights to signed 7 bits or unsigned 8 bits so that onnxruntime's
U8S8 kernels on AVX2 and AVX-512 without VNNI, which add the products of unsigned
activations and signed weights in pairs into 16 bits with saturation (`vpmaddubsw`),
never saturate (`model_export/quantize.py`). This test holds every weight matrix of
every published model to that, one product at a time, on the same inputs everywhere:
each matrix becomes a one-node MatMulInteger graph, run under `qemu-x86_64 -cpu
Haswell-v4` (AVX2: the saturating kernel) and `-cpu SandyBridge-v1` (the exact one) on
activations that provoke saturation (rows of 255, random bytes, 0/255 patterns), and
both must equal the exact product computed in numpy. A signed 8-bit matrix of 127s is run
beside them as the control: it must come out wrong on Haswell, or the emulated CPU is
not the kernel this test means.

What this cannot pin down is the float part of a model (softmax, LayerNorm, GELU), whose
kernels differ by CPU in the last bits; when such a difference crosses a rounding step of
the next dynamic quantization, it moves one activation by one step. That is bounded end
to end by `tests/models/test_int8_portability.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.needs import QEMU_MARKS
from tests.published import Published, fetch_published
from tests.qemu import CPUS, EXACT, SATURATING, run_on_each_cpu

pytestmark = QEMU_MARKS

#: integer-product ops -> (index of the weight input, index of its zero point)
PRODUCTS = {"MatMulInteger": (1, 3), "QAttention": (1, 7)}
#: quantized ops without an integer product (quantize/dequantize, table lookups)
NO_PRODUCT = {"DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear", "QEmbedLayerNormalization"}

A_ZERO_POINT = 113
#: fewer products than this means the graphs changed shape under the test (five models: 92)
MIN_PRODUCTS = 40
ROWS = 12

# Runs inside qemu: only numpy and onnxruntime, one thread, each product on the activations.
_CHILD = """
import sys, numpy as np, onnxruntime as ort
paths, a_path, out_path = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
a = np.load(a_path)
outputs = {}
for path in paths:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    k = session.get_inputs()[0].shape[1]
    outputs[path] = session.run(None, {"a": a[:, :k]})[0]
np.savez(out_path, **outputs)
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    return fetch_published(tmp_path_factory.mktemp("model-cache"))


def _is_quantized(op: str) -> bool:
    return op.startswith("Q") or "Integer" in op or "Quantize" in op


def _weights(model_path: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(node name, weight, weight zero point) of every integer product in the graph."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_path)).graph
    inits = {t.name: t for t in graph.initializer}
    found = []
    for node in graph.node:
        if node.op_type in PRODUCTS:
            w_at, zp_at = PRODUCTS[node.op_type]
            weight = numpy_helper.to_array(inits[node.input[w_at]])
            has_zp = len(node.input) > zp_at and node.input[zp_at] in inits
            zero_point = numpy_helper.to_array(inits[node.input[zp_at]]) if has_zp else np.zeros((), weight.dtype)
            found.append((node.name, weight, zero_point))
        else:
            assert not _is_quantized(node.op_type) or node.op_type in NO_PRODUCT, (
                f"{model_path.name}: quantized op {node.op_type} ({node.name}) is not checked by this test"
            )
    return found


def _product_graph(weight: np.ndarray, zero_point: np.ndarray, path: Path) -> Path:
    """A one-node MatMulInteger graph with `weight` as a constant (prepacked, as served)."""
    from onnx import TensorProto, helper, numpy_helper

    k, n = weight.shape
    node = helper.make_node("MatMulInteger", ["a", "b", "a_zp", "b_zp"], ["y"])
    graph = helper.make_graph(
        [node],
        "product",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [ROWS, k])],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [ROWS, n])],
        [
            numpy_helper.from_array(weight, "b"),
            numpy_helper.from_array(np.array(A_ZERO_POINT, np.uint8), "a_zp"),
            numpy_helper.from_array(zero_point.astype(weight.dtype), "b_zp"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


def _activations(k: int) -> np.ndarray:
    """Rows of 255, random bytes and random 0/255: the inputs where pairs saturate."""
    rng = np.random.default_rng(0)
    full = np.full((ROWS // 3, k), 255, np.uint8)
    uniform = rng.integers(0, 256, size=(ROWS // 3, k), dtype=np.uint8)
    extremes = (rng.integers(0, 2, size=(ROWS - 2 * (ROWS // 3), k)) * 255).astype(np.uint8)
    return np.concatenate([full, uniform, extremes])


def _exact(a: np.ndarray, weight: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    return (a.astype(np.int64) - A_ZERO_POINT) @ (weight.astype(np.int64) - zero_point.astype(np.int64))


def test_every_integer_product_is_exact_on_a_saturating_and_an_exact_kernel(published, tmp_path):
    cases: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for name, entry in sorted(published.manifest["models"].items()):
        for i, (node, weight, zero_point) in enumerate(_weights(published.path / entry["file"])):
            path = _product_graph(weight, zero_point, tmp_path / f"{name}-{i}.onnx")
            cases[str(path)] = (f"{name}/{node}", weight, zero_point)
    assert len(cases) >= MIN_PRODUCTS, f"too few integer products found: {len(cases)}"
    control = np.full((384, 16), 127, np.int8)  # signed 8-bit: 255 * 127 * 2 > 32,767
    control_path = str(_product_graph(control, np.zeros((), np.int8), tmp_path / "control.onnx"))

    k_max = max(w.shape[0] for _, w, _ in cases.values())
    a = _activations(k_max)
    np.save(tmp_path / "a.npy", a)
    outputs = run_on_each_cpu(_CHILD, [",".join([*cases, control_path]), str(tmp_path / "a.npy")], tmp_path)

    control_exact = _exact(a[:, :384], control, np.zeros((), np.int8))
    assert np.array_equal(outputs[EXACT][control_path], control_exact), "the exact kernel is not exact"
    assert not np.array_equal(outputs[SATURATING][control_path], control_exact), (
        f"{SATURATING} did not saturate a signed 8-bit product: not the kernel this test means"
    )
    wrong = []
    for path, (label, weight, zero_point) in cases.items():
        expected = _exact(a[:, : weight.shape[0]], weight, zero_point)
        for cpu in CPUS:
            if not np.array_equal(outputs[cpu][path].astype(np.int64), expected):
                wrong.append(f"{label} on {cpu}: max |error| {np.abs(outputs[cpu][path] - expected).max()}")
    assert not wrong, "\n".join(wrong)
