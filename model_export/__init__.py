"""Training, ONNX export, INT8 quantization, gating and publishing of model versions.

This package uses torch/transformers/optimum and runs only in `.venv-train`; nothing in
`shared/` may import it. The one entry point is `python -m model_export build`.
"""
