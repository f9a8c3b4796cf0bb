"""The published INT8 models compute the same outputs on every x86 CPU the product supports.

onnxruntime chooses its int8 kernels by the CPU it runs on. Unsigned activations meet
signed weights (U8S8): with VNNI, and below AVX2, the products are accumulated exactly;
AVX2 and AVX-512 without VNNI add them in pairs into 16 bits with saturation. The build
quantizes weights to 7 bits so that no pair can saturate (`model_export/quantize.py`);
`tests/model_export/test_int8_kernels.py` proves every integer product of every published
model exact on both kinds of kernel. This test bounds what is left, end to end: every
published model runs under `qemu-x86_64 -cpu Haswell-v4` (AVX2: the saturating kernel)
and `-cpu SandyBridge-v1` (AVX without AVX2: the exact kernel) on the same inputs. The
float kernels (softmax, LayerNorm, GELU) differ between the two in the last bits, and
where such a difference crosses a rounding step of the next dynamic quantization one
activation moves by one step, which later layers carry on: embeddings must agree to a
cosine of 0.995 (vectors stored on one machine meet queries embedded on another),
probabilities to 0.05 (a fifth of the INT8 gate's 0.25 against FP32). With the signed
8-bit weights of earlier builds the encoder's embeddings differed by up to 0.056 of
cosine between the two (docs/models.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.needs import QEMU_MARKS
from tests.qemu import CPUS, run_on_each_cpu

pytestmark = QEMU_MARKS

#: 1 - worst cosine between the two CPUs' embeddings
EMBEDDING_BOUND = 0.005
#: max |difference| of a probability (or relative difference of another output)
PROBABILITY_BOUND = 0.05

SENTENCES = [
    "What is the difference between a list and a tuple in Python?",
    "I still don't get why my recursion never stops, can you explain it again",
    "Photosynthesis turns light energy into chemical energy stored in glucose.",
    "ok",
]

# Runs inside qemu: only numpy and onnxruntime, one thread, every model on its feeds.
_CHILD = """
import sys, numpy as np, onnxruntime as ort
models, feeds_path, out_path = sys.argv[1].split(","), sys.argv[2], sys.argv[3]
feeds = dict(np.load(feeds_path))
outputs = {}
for path in models:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    feed = {i.name: feeds[path + "|" + i.name] for i in session.get_inputs()}
    outputs[path] = session.run(None, feed)[0]
np.savez(out_path, **outputs)
"""


def _feeds(version_dir: Path, manifest: dict) -> dict[str, np.ndarray]:
    """Inputs for every model's graph: tokenized sentences where it reads tokens, seeded
    values of the declared type and shape (dynamic sizes 4) where it reads features."""
    import onnxruntime as ort

    from shared.models.onnx_model import load_tokenizer, tokenize

    tokens = tokenize(load_tokenizer(version_dir / "tokenizer.json"), SENTENCES)
    rng = np.random.default_rng(0)
    feeds: dict[str, np.ndarray] = {}
    for entry in manifest["models"].values():
        path = str(version_dir / entry["file"])
        for spec in ort.InferenceSession(path, providers=["CPUExecutionProvider"]).get_inputs():
            if spec.name in tokens:
                value = tokens[spec.name]
            else:
                shape = [d if isinstance(d, int) else 4 for d in spec.shape]
                if "int" in spec.type:
                    value = np.zeros(shape, dtype=np.int64)
                else:
                    value = rng.normal(size=shape).astype(np.float32)
            feeds[path + "|" + spec.name] = value
    return feeds


def _disagreement(kind: str, a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two CPUs' outputs are, in the units the product reads them in."""
    if kind == "embedding":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return float(1.0 - np.sum(a * b, axis=1).min())  # 1 - worst cosine
    if kind == "logits":
        pa = np.exp(a - a.max(axis=-1, keepdims=True))
        pb = np.exp(b - b.max(axis=-1, keepdims=True))
        return float(np.abs(pa / pa.sum(-1, keepdims=True) - pb / pb.sum(-1, keepdims=True)).max())
    if kind == "logit":
        return float(np.abs(1 / (1 + np.exp(-a)) - 1 / (1 + np.exp(-b))).max())
    return float(np.abs(a - b).max() / max(1.0, float(np.abs(a).max())))


def test_every_model_agrees_within_bounds_on_a_saturating_and_an_exact_int8_kernel(published, tmp_path):
    manifest = published.manifest
    feeds_path = tmp_path / "feeds.npz"
    np.savez(feeds_path, **_feeds(published.path, manifest))
    models = [str(published.path / e["file"]) for e in manifest["models"].values()]
    outputs = run_on_each_cpu(_CHILD, [",".join(models), str(feeds_path)], tmp_path)
    report = {}
    for name, entry in manifest["models"].items():
        path = str(published.path / entry["file"])
        kind = entry.get("output_kind", "")
        report[name] = _disagreement(kind, *(outputs[cpu][path] for cpu in CPUS))
    print(json.dumps(report))
    # Measured (docs/models.md): encoder, confusion and predictor 0.0000, intent 0.0009;
    # the grader 0.016 in a build whose fused 7-bit graph rounds one activation of layer 0
    # the other way on the two CPUs (its float attention differs by 8e-7), which grows
    # through the six layers. The signed 8-bit models of an earlier build: encoder 0.033,
    # grader 0.016, confusion 0.013, intent 0.010, predictor 0.009.
    bound = {
        name: EMBEDDING_BOUND if e.get("output_kind") == "embedding" else PROBABILITY_BOUND
        for name, e in manifest["models"].items()
    }
    assert all(report[name] <= bound[name] for name in report), (report, bound)
