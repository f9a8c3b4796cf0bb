"""Importing the serving code must not import torch or transformers.

Checked in a fresh interpreter (this test process may have imported anything), over
every module of the serving packages, so a new module that slips in a heavy import fails.
"""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVING_PACKAGES = ["shared.models", "shared.embeddings", "shared.artifacts"]

PROBE = """
import importlib, json, pkgutil, sys
imported, failed = [], {}
for package in PACKAGES:
    pkg = importlib.import_module(package)
    imported.append(package)
    for info in pkgutil.iter_modules(pkg.__path__, package + "."):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as exc:
            failed[info.name] = repr(exc)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers",
               "sentence_transformers", "optimum", "model_export"))
print(json.dumps({"imported": imported, "failed": failed, "heavy": heavy}))
"""


def test_serving_modules_import_without_torch_or_transformers():
    code = f"PACKAGES = {SERVING_PACKAGES!r}\n{PROBE}"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"serving code imported {report['heavy']}"
    assert report["failed"] == {}, report["failed"]
    assert "shared.models.onnx_model" in report["imported"]
    assert "shared.models.registry" in report["imported"]
    assert "shared.embeddings.service" in report["imported"]
