"""The intent read in the encoder's own pass: an attention head on its hidden states.

A chat turn used to run two MiniLM passes one after the other, the intent classifier and
then the sentence encoder, and the full-text search had to wait for the intent. This
model is the served INT8 encoder graph itself with a small head merged into it: the
head reads the seven hidden states the encoder computes anyway (the embedding layer's
output and each transformer layer's), so one run yields both the retrieval vector and the
intent logits (docs/intent_confusion.md, issue 14).

- The encoder is not re-exported or re-quantized: the head is grafted onto the version's
  `encoder.onnx`, so `sentence_embedding` stays that file's bit for bit (checked on the
  build's texts before the model is published) and retraining the intent never re-embeds
  the knowledge base.
- The head (`AttentionHead`): a learned mix of the seven states, layer-normalised, pooled
  by a learned attention score over the tokens and by the mean, each layer's normalised
  mean beside them, one hidden layer; about 1.8M parameters in FP32.
- Training reads each text alone, as a turn does (the INT8 graph quantizes its
  activations per run, so padding in a batch would shift the numbers), on the intent
  model's split; the recipe is fixed in advance (`HeadConfig`: one-cycle AdamW, the last
  epoch kept), the temperature is fitted on the validation part, as for the intent model.
- Gate (`passes_gate`): the head ships only when it reads the golden set as well as the
  fine-tuned intent model of the same build and is within `TEST_TOLERANCE` of it on the
  test part; otherwise the version has no `encoder_intent` and chat runs the two passes.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from model_export.calibration import fit_temperature

log = logging.getLogger(__name__)

NAME = "encoder_intent"
LABELS_FILE = "encoder_intent_labels.json"
LAYERS = 7  # the embedding layer's output and six transformer layers
DIM = 384
#: the head may trail the fine-tuned intent model by this much test accuracy (one query
#: of the 62 the seed split tests is 0.016; the runs measured differ by one or two)
TEST_TOLERANCE = 0.035
_EMBEDDING_OUTPUT = "sentence_embedding"


@dataclass(frozen=True)
class HeadConfig:
    """The head's recipe, fixed in advance: nothing is chosen on the validation part."""

    hidden: int = 512
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 32
    weight_decay: float = 1e-2
    label_smoothing: float = 0.1
    dropout: float = 0.1
    seed: int = 0
    threads: int = 2


class AttentionHead(torch.nn.Module):
    """Intent logits from the encoder's seven hidden states (batch, 7, tokens, 384) and
    the attention mask: a head that can weigh the words that decide an intent ("error",
    "quiz", "summarise") at the layers that keep how a message is phrased."""

    def __init__(self, classes: int, hidden: int = 512, dropout: float = 0.1) -> None:
        super().__init__()
        self.mix = torch.nn.Parameter(torch.zeros(LAYERS))
        self.norm = torch.nn.LayerNorm(DIM)
        self.score = torch.nn.Linear(DIM, 1)
        self.mlp = torch.nn.Sequential(
            torch.nn.Dropout(dropout),
            torch.nn.Linear((2 + LAYERS) * DIM, hidden),
            torch.nn.GELU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, classes),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        mixed = self.norm((x * torch.softmax(self.mix, 0)[None, :, None, None]).sum(dim=1))
        scores = self.score(mixed).squeeze(-1).masked_fill(mask == 0, -1e4)
        attended = (torch.softmax(scores, dim=1).unsqueeze(-1) * mixed).sum(dim=1)
        counts = mask.sum(dim=1, keepdim=True)
        mean = (mixed * mask.unsqueeze(-1)).sum(dim=1) / counts
        layer_means = (x * mask[:, None, :, None]).sum(dim=2) / counts[:, None]
        layers = torch.nn.functional.normalize(layer_means, dim=-1).flatten(1)
        return self.mlp(torch.cat([attended, mean, layers], dim=1))


class _GraphHead(torch.nn.Module):
    """The head as the merged graph feeds it: seven (batch, tokens, 384) states and the
    int64 mask the encoder was given."""

    def __init__(self, head: AttentionHead) -> None:
        super().__init__()
        self.head = head

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        *states, mask = inputs
        return self.head(torch.stack(states, dim=1), mask.to(torch.float32))


def hidden_state_names(encoder: onnx.ModelProto) -> list[str]:
    """The seven hidden-state tensors of the exported MiniLM graph: the embedding layer's
    output (the fused `EmbedLayerNormalization`'s in an optimised graph, else the
    embeddings' LayerNorm) and each transformer layer's output LayerNorm."""
    fused = [n.output[0] for n in encoder.graph.node if n.op_type.endswith("EmbedLayerNormalization")]
    embedding = fused[0] if fused else "/bert/embeddings/LayerNorm/LayerNormalization_output_0"
    layers = [f"/bert/encoder/layer.{i}/output/LayerNorm/LayerNormalization_output_0" for i in range(LAYERS - 1)]
    produced = {out for node in encoder.graph.node for out in node.output}
    missing = [name for name in [embedding, *layers] if name not in produced]
    if missing:
        raise ValueError(f"the encoder graph has no tensor {missing[0]!r}: exported differently?")
    return [embedding, *layers]


def expose_states(encoder_path: Path, dst: Path) -> Path:
    """The encoder graph with its seven hidden states added as outputs (nothing else
    changes), for reading training features exactly as the merged graph will see them."""
    model = onnx.load(str(encoder_path))
    for name in hidden_state_names(model):
        model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    onnx.save(model, str(dst))
    return dst


class StateReader:
    """The exposed encoder through the serving session options and the encoder's
    tokenizer (a `tokenizers.Tokenizer` set up as the encoder's: `load_tokenizer`)."""

    def __init__(self, exposed: Path, tokenizer: Any, threads: int | None = None) -> None:
        import onnxruntime as ort

        from shared.models.onnx_model import session_options

        self.session = ort.InferenceSession(str(exposed), session_options(threads), providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer

    def read(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One text's embedding (384,) and states (7, tokens, 384); one text per run."""
        from shared.models.onnx_model import tokenize

        vector, *states = self.session.run(None, tokenize(self.tokenizer, [text]))
        return vector[0], np.stack(states, axis=1)[0]

    def states(self, texts: list[str]) -> dict[str, np.ndarray]:
        """Each distinct text's states, float16 (a few hundred texts: a few MB)."""
        return {text: self.read(text)[1].astype(np.float16) for text in dict.fromkeys(texts)}


def padded(table: dict[str, np.ndarray], texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    longest = max(table[t].shape[1] for t in texts)
    x = torch.zeros(len(texts), LAYERS, longest, DIM)
    mask = torch.zeros(len(texts), longest)
    for i, t in enumerate(texts):
        n = table[t].shape[1]
        x[i, :, :n] = torch.from_numpy(table[t].astype(np.float32))
        mask[i, :n] = 1
    return x, mask


def fit_head(
    table: dict[str, np.ndarray],
    train: list[tuple[str, str]],
    labels: list[str],
    config: HeadConfig = HeadConfig(),
    *,
    class_weights: dict[str, float] | None = None,
    targets: np.ndarray | None = None,
) -> AttentionHead:
    """AdamW under a one-cycle schedule, label-smoothed cross-entropy, a fixed number of
    epochs, the last kept (the validation part is the temperature's). `targets` (one
    distribution per training text, unsmoothed) replaces the labels: a teacher's, as
    `benchmarks/bench_intent_layer_head.py --teacher` measured (no gain; not built)."""
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    index = {label: i for i, label in enumerate(labels)}
    head = AttentionHead(len(labels), config.hidden, config.dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps = config.epochs * -(-len(train) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps, pct_start=0.1)
    weight = torch.tensor([(class_weights or {}).get(label, 1.0) for label in labels])
    texts = [t for t, _ in train]
    y = torch.tensor([index[label] for _, label in train]) if targets is None else torch.from_numpy(targets)
    smoothing = config.label_smoothing if targets is None else 0.0
    head.train()
    for _ in range(config.epochs):
        order = torch.randperm(len(texts))
        for i in range(0, len(texts), config.batch_size):
            rows = order[i : i + config.batch_size]
            x, mask = padded(table, [texts[j] for j in rows])
            loss = torch.nn.functional.cross_entropy(head(x, mask), y[rows], weight=weight, label_smoothing=smoothing)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    return head.eval()


def head_logits(head: AttentionHead, table: dict[str, np.ndarray], texts: list[str]) -> np.ndarray:
    """Raw logits (n, classes), in batches of 256."""
    out = [np.zeros((0, head.mlp[-1].out_features), dtype=np.float32)]
    for i in range(0, len(texts), 256):
        x, mask = padded(table, texts[i : i + 256])
        with torch.no_grad():
            out.append(head(x, mask).numpy())
    return np.concatenate(out)


def merge(encoder_path: Path, head: AttentionHead, dst: Path) -> Path:
    """One graph: the encoder with the head on its hidden states; outputs
    `sentence_embedding` (the encoder's, untouched) and `logits`."""
    import onnx.compose

    encoder = onnx.load(str(encoder_path))
    states = hidden_state_names(encoder)
    graph = encoder.graph
    del graph.output[1:]  # an encoder graph has one output, the embedding; keep just it
    if graph.output[0].name != _EMBEDDING_OUTPUT:
        raise ValueError(f"the encoder's first output is {graph.output[0].name!r}, not {_EMBEDDING_OUTPUT!r}")
    feeds = [f"hidden_state_{i}" for i in range(LAYERS)] + ["head_attention_mask"]
    for src, out in zip([*states, "attention_mask"], feeds, strict=True):
        graph.node.append(onnx.helper.make_node("Identity", [src], [out]))
        kind = onnx.TensorProto.INT64 if src == "attention_mask" else onnx.TensorProto.FLOAT
        graph.output.append(onnx.helper.make_tensor_value_info(out, kind, None))

    with_head = dst.with_suffix(".head.onnx")
    example = (*[torch.zeros(1, 4, DIM) for _ in range(LAYERS)], torch.ones(1, 4, dtype=torch.int64))
    torch.onnx.export(
        _GraphHead(head).eval(),
        example,
        str(with_head),
        input_names=feeds,
        output_names=["logits"],
        dynamic_axes={name: {0: "batch", 1: "sequence"} for name in feeds} | {"logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    # the exporter's internal names (/Constant_output_0, ...) would collide with the
    # encoder's: every name of the head's graph gets a prefix, its output gets "logits" back
    head_graph = onnx.compose.add_prefix(onnx.load(str(with_head)), "head/")
    head_graph.ir_version = encoder.ir_version
    merged = onnx.compose.merge_models(
        encoder,
        head_graph,
        io_map=[(name, f"head/{name}") for name in feeds],
        outputs=[_EMBEDDING_OUTPUT, "head/logits"],
    )
    for node in merged.graph.node:
        node.output[:] = ["logits" if out == "head/logits" else out for out in node.output]
    merged.graph.output[1].name = "logits"
    onnx.save(merged, str(dst))
    with_head.unlink()
    return dst


def accuracy(logits: np.ndarray, truth: list[str], labels: list[str]) -> float:
    predicted = np.asarray(labels)[logits.argmax(axis=1)] if len(logits) else np.asarray([])
    return round(float((predicted == np.asarray(truth)).mean()) if len(truth) else 0.0, 4)


def passes_gate(metrics: dict, reference: dict | None) -> tuple[bool, str]:
    """Whether the head may serve: the golden set read as well as the fine-tuned intent
    model of the same build, test accuracy within TEST_TOLERANCE of it. Without a
    reference (no intent model built) it does not ship: nothing to hold it to."""
    if not reference:
        return False, "no intent model in this build to compare with"
    ref_golden = reference.get("golden", {}).get("accuracy")
    ref_test = reference.get("test", {}).get("accuracy")
    if ref_golden is not None and metrics["golden"]["accuracy"] < ref_golden:
        return False, f"golden accuracy {metrics['golden']['accuracy']} below the intent model's {ref_golden}"
    if ref_test is not None and metrics["test"]["accuracy"] < ref_test - TEST_TOLERANCE:
        return False, f"test accuracy {metrics['test']['accuracy']} more than {TEST_TOLERANCE} below {ref_test}"
    return True, "golden and test as the intent model"


def build(
    version_dir: Path,
    work_dir: Path,
    split,
    labels: list[str],
    golden: list[tuple[str, str]],
    reference: dict | None,
    config: HeadConfig = HeadConfig(),
) -> dict | None:
    """Train the head on the version's encoder, merge, check, write `encoder_intent.onnx`
    and its label file into `version_dir`; return its manifest entry, or None when the
    gate keeps it out (the reason is logged and returned in the build's record)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    encoder_path = version_dir / "encoder.onnx"
    encoder_config = json.loads((version_dir / "encoder_config.json").read_text(encoding="utf-8"))
    max_length = int(encoder_config.get("max_length", 256))
    started = time.perf_counter()
    from shared.models.onnx_model import load_tokenizer

    tokenizer = load_tokenizer(version_dir / "tokenizer.json", max_length=max_length)
    reader = StateReader(expose_states(encoder_path, work_dir / "encoder.states.onnx"), tokenizer, config.threads)
    texts = [t for t, _ in [*split.train, *split.val, *split.test, *golden]]
    table = reader.states(texts)
    head = fit_head(table, list(split.train), labels, config)
    val_logits = head_logits(head, table, [t for t, _ in split.val])
    temperature = fit_temperature(val_logits, np.asarray([labels.index(y) for _, y in split.val])) if split.val else 1.0
    metrics: dict = {"config": asdict(config), "temperature": round(temperature, 4)}
    for part, rows in (("val", split.val), ("test", split.test), ("golden", golden)):
        logits = head_logits(head, table, [t for t, _ in rows])
        metrics[part] = {"accuracy": accuracy(logits, [y for _, y in rows], labels), "n": len(rows)}
    metrics["train_seconds"] = round(time.perf_counter() - started, 1)
    ok, reason = passes_gate(metrics, reference)
    log.info("intent head: %s (%s)", {k: metrics[k] for k in ("val", "test", "golden")}, reason)
    if not ok:
        return {"skipped": reason, "metrics": metrics}
    merged = merge(encoder_path, head, version_dir / f"{NAME}.onnx")
    check = check_merged(merged, encoder_path, reader, head, texts)
    (version_dir / LABELS_FILE).write_text(
        json.dumps({"labels": labels, "temperature": temperature, "max_length": max_length}, indent=2) + "\n",
        encoding="utf-8",
    )
    return {
        "file": merged.name,
        "extra_files": [LABELS_FILE, "tokenizer.json"],
        "output_kind": "embedding+logits",
        "metrics": metrics | {"gate": reason},
        "merged_check": check,
        "sizes": {"bytes": merged.stat().st_size},
    }


def check_merged(merged: Path, encoder_path: Path, reader: StateReader, head: AttentionHead, texts: list[str]) -> dict:
    """The merged graph against its parts on every text it was built from: the embedding
    bit for bit the encoder's, the logits the torch head's (float tolerance). Raises
    when either differs, so a version never serves vectors from another space."""
    import onnxruntime as ort

    from shared.models.onnx_model import session_options, tokenize

    merged_session = ort.InferenceSession(str(merged), session_options(1), providers=["CPUExecutionProvider"])
    encoder_session = ort.InferenceSession(str(encoder_path), session_options(1), providers=["CPUExecutionProvider"])
    worst = 0.0
    distinct = list(dict.fromkeys(texts))
    for text in distinct:
        feeds = tokenize(reader.tokenizer, [text])
        vector, logits = merged_session.run(None, feeds)
        if not np.array_equal(vector, encoder_session.run(None, feeds)[0]):
            raise RuntimeError(f"the merged graph's embedding differs from the encoder's on {text!r}")
        states = torch.from_numpy(reader.read(text)[1][None])
        with torch.no_grad():
            want = head(states, torch.ones(1, states.shape[2])).numpy()
        worst = max(worst, float(np.abs(logits - want).max()))
    if worst > 1e-3:
        raise RuntimeError(f"the merged graph's logits differ from the head's by {worst:.2e}")
    return {"texts": len(distinct), "embedding": "bit for bit the encoder's", "max_logit_diff": worst}
