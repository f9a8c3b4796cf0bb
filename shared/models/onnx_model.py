"""The one ONNX Runtime session helper, the typed base of every served model, and the
tokenizer setup they share.

Per-model classes (encoder, intent, confusion, ...) stay thin (the fastembed shape): a
`ServedModel` subclass names its file, reads its side files (its description as data) in
the `load` hook, and says how inputs become feeds (`preprocess`) and outputs become an
answer (`postprocess`); `infer` chains them. Session options, thread counts, input
filtering, the manifest entry, the calibrated softmax and BERT tokenization live here once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

#: Environment variable that caps intra-op threads for every session in the process.
THREADS_ENV = "ONNX_THREADS"


def default_threads() -> int:
    """Threads per session: ONNX_THREADS if set, else the CPUs this process may use.

    A Cloud Function instance gets 1-2 vCPUs; oversubscribing them only adds contention.
    """
    env = os.environ.get(THREADS_ENV)
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """CPU session options tuned for small models answering one request at a time."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # warnings about unused initialisers are noise here
    # Each session owns its intra-op pool, and by default its threads spin after a run.
    # A chat turn runs the encoder, then intent, then confusion, with database round
    # trips in between: the spinning threads of one session take the 1-2 vCPUs the next
    # one needs (intent 12.5 ms p50 after the encoder with spinning, 4.1 ms without, on 2
    # cores under load: docs/chat.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


class OnnxModel:
    """An ONNX graph loaded on the CPU execution provider."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(self.path),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self.input_names: list[str] = [i.name for i in self.session.get_inputs()]
        self.output_names: list[str] = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Run the graph, dropping feeds it does not take (e.g. token_type_ids).

        Tokenizers always produce all three BERT inputs; an exported graph may have pruned
        one, and passing it would be an error, so the filter lives here once.
        """
        missing = [name for name in self.input_names if name not in feeds]
        if missing:
            raise ValueError(f"{self.path.name}: missing inputs {missing}")
        return self.session.run(None, {name: feeds[name] for name in self.input_names})


class ServedModel:
    """Base of every served model, constructed by the registry as (version_dir, entry).

    Subclasses set `name` and `default_file` and override `load` to read what they need
    besides the graph (label maps, tokenizer, config); the session is opened after it, so
    a bad side file fails before the (larger) graph is loaded.
    """

    name: ClassVar[str]
    default_file: ClassVar[str]
    #: A batch `warm_up` runs through `infer` (None: the model has no warm-up run).
    warm_up_input: ClassVar[Sequence[Any] | None] = None

    def __init__(self, version_dir: Path, entry: dict[str, Any] | None = None, *, threads: int | None = None) -> None:
        self.version_dir = Path(version_dir)
        self.entry: dict[str, Any] = entry or {}
        self.metrics: dict[str, Any] = self.entry.get("metrics", {})
        self.load(self.version_dir)
        self.session = OnnxModel(self.version_dir / self.entry.get("file", self.default_file), threads=threads)

    def load(self, version_dir: Path) -> None:
        """Hook: read the model's side files (nothing by default)."""

    def preprocess(self, inputs: Sequence[Any]) -> dict[str, np.ndarray]:
        """Hook: the graph's feeds for a batch of inputs (texts, pairs, ...).

        Models whose inputs are not a plain batch (the confusion window, the predictor's
        ids and features) build their feeds in their own methods and never call `infer`.
        """
        raise NotImplementedError(f"{type(self).__name__} has no preprocess hook")

    def postprocess(self, outputs: list[np.ndarray]) -> np.ndarray:
        """Hook: the answer for one batch from the graph's outputs (the first output)."""
        return outputs[0]

    def warm_up(self) -> None:
        """One run on `warm_up_input`, before a request needs the model: a session's first
        run allocates its buffers (50-90 ms for a MiniLM against 1-2 ms afterwards)."""
        if self.warm_up_input is not None:
            self.infer(self.warm_up_input)

    def infer(self, inputs: Sequence[Any]) -> np.ndarray:
        """preprocess -> session -> postprocess for one batch: the path every text model
        shares, so a subclass only says how its inputs become feeds."""
        return self.postprocess(self.session.run(self.preprocess(inputs)))


def calibrated_softmax(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise softmax of logits / temperature, in float64 (the temperature is fitted on
    held-out data at training time, so these are calibrated probabilities)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def load_tokenizer(path: Path, *, max_length: int = 128) -> Tokenizer:
    """Load a tokenizer.json with dynamic padding and truncation.

    The MiniLM tokenizer.json pads every input to a fixed 128 tokens; a typical query is
    ~15 tokens, so padding only to the longest text in the batch is several times faster.
    """
    tokenizer = Tokenizer.from_file(str(path))
    # BERT's pad token, else RoBERTa/MPNet's (a teacher's tokenizer in training)
    pad_token = next((t for t in ("[PAD]", "<pad>") if tokenizer.token_to_id(t) is not None), "[PAD]")
    pad_id = tokenizer.token_to_id(pad_token)
    tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token=pad_token)
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


def tokenize(tokenizer: Tokenizer, texts: Sequence[str] | Sequence[tuple[str, str]]) -> dict[str, np.ndarray]:
    """BERT feeds (input_ids, attention_mask, token_type_ids), int64 (n, longest) arrays,
    for single texts or for (first, second) pairs (a cross-encoder's input)."""
    encodings = tokenizer.encode_batch(list(texts))
    return {
        "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
        "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
    }
