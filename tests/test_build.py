"""The deployable zips: a function's folder + shared/ + requirements.txt, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_build_produces_one_deterministic_zip_per_function(tmp_path):
    cmd = [sys.executable, str(REPO / "scripts/build_functions.py"), "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, capture_output=True)
    zips = sorted(p.name for p in tmp_path.glob("*.zip"))
    assert zips == ["chat.zip", "feedback.zip", "grading.zip", "nightly.zip", "prediction.zip", "retrain.zip"]
    first = (tmp_path / "grading.zip").read_bytes()

    with zipfile.ZipFile(tmp_path / "grading.zip") as zf:
        names = zf.namelist()
    assert "main.py" in names and "requirements.txt" in names
    assert "shared/http/router.py" in names and "shared/db/migrations/env.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    assert not [n for n in names if n.startswith(("functions/", "local/", ".state"))]

    subprocess.run([*cmd, "grading"], check=True, capture_output=True)
    assert (tmp_path / "grading.zip").read_bytes() == first


def test_serving_requirements_exclude_training_stack():
    reqs = (REPO / "requirements.txt").read_text().lower()
    for heavy in ("torch", "transformers", "optimum", "sentence-transformers"):
        assert f"\n{heavy}" not in reqs
