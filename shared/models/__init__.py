"""The small expert models served from INT8 ONNX: runtime base, per-model classes, registry.

Only onnxruntime, tokenizers and numpy are used here (never torch or transformers), so a
function instance stays small and starts fast.
"""
