"""torch -> ONNX, the one way every model of this project is exported.

Why the TorchScript exporter (`dynamo=False`): torch 2.13's default dynamo exporter
needs onnxscript and turns dynamic batch/sequence axes into symbolic-shape constraints
that the BERT attention mask code trips over; the TorchScript exporter with
`dynamic_axes` gives a plain opset-17 graph that onnxruntime's quantizer handles
well. The file is written as one self-contained .onnx (no external data), which is
what the artifact store checksums and ships.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import onnx
import torch

OPSET = 17


def export_onnx(
    module: torch.nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_axes: Mapping[str, Mapping[int, str]],
) -> Path:
    """Export `module` in eval mode to a single-file ONNX model at `path` and check it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about python control flow
        torch.onnx.export(
            module,
            example_inputs,
            str(path),
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(path))
    return path
