"""The hand-over from a trainer to the publishing pipeline.

Trainers (intent, confusion) each return one `TrainedModel`: a FP32 ONNX graph plus
what must be published beside it and what the manifest must record. The pipeline owns
everything after that (INT8 quantization, the INT8-vs-FP32 gate, publishing), so a
trainer never needs to know about the artifact store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: Softmax classifier: agreement is argmax match rate plus max |prob diff|.
LOGITS = "logits"
#: Single sigmoid output: agreement is max |prob diff| and decision (p>=0.5) match rate.
LOGIT = "logit"
#: Sentence embedding (the encoder): agreement is cosine similarity.
EMBEDDING = "embedding"

OUTPUT_KINDS = (LOGITS, LOGIT, EMBEDDING)


@dataclass
class TrainedModel:
    """A trained FP32 model ready for quantization, checking and publishing."""

    name: str  # "intent" | "confusion" (key in the manifest, file stem in the version)
    fp32_onnx: Path  # FP32 ONNX written by the trainer into its work_dir
    extra_files: list[Path]  # published beside the .onnx, under their own file names
    metrics: dict  # FP32 validation/test metrics, recorded in the manifest
    data: dict  # training data description: source, sizes, sha256, how it was built
    check_feeds: list[dict[str, np.ndarray]]  # held-out ONNX feeds for the INT8 check
    output_kind: str  # LOGITS or LOGIT (EMBEDDING is the encoder's, built by the pipeline)
    extra: dict = field(default_factory=dict)  # anything else worth recording in the manifest

    def __post_init__(self) -> None:
        if self.output_kind not in OUTPUT_KINDS:
            raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}, got {self.output_kind!r}")
        if not self.check_feeds:
            raise ValueError(f"{self.name}: check_feeds is empty; the INT8 gate needs inputs")
