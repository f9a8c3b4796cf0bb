"""The deployable zips: a function's folder + shared/ + requirements.txt, nothing else."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


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


_BLOCKER = """
import importlib.abc, sys
BLOCKED = {blocked!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{{name}} is not in this function's requirements")
        return None
sys.meta_path.insert(0, Block())
import importlib.util
spec = importlib.util.spec_from_file_location("main", {main!r})
module = importlib.util.module_from_spec(spec)
sys.modules["main"] = module  # as functions-framework's load_function_module does
spec.loader.exec_module(module)
print("imported")
"""


def test_each_function_imports_without_the_packages_its_zip_leaves_out(tmp_path):
    """A function's zip carries only what it needs; importing it (its cold start) with
    the left-out packages blocked proves none of them is imported eagerly."""
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import build_functions
    finally:
        sys.path.pop(0)
    env = {**__import__("os").environ, "STATE_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    for name in build_functions.function_names():
        excluded = build_functions.EXCLUDED_PACKAGES[name]
        blocked = sorted(build_functions.OPTIONAL_PACKAGES[p] for p in excluded)
        script = _BLOCKER.format(blocked=blocked, main=str(REPO / "functions" / name / "main.py"))
        run = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True)
        assert run.returncode == 0 and "imported" in run.stdout, (name, run.stderr[-2000:])
        reqs = build_functions.requirements_for(name).lower()
        assert all(f"\n{p}==" not in "\n" + reqs for p in excluded), name
    assert "google-cloud-firestore==" not in build_functions.requirements_for("chat")
    # the Vertex AI client rides with the retrain function only; no function pins
    # google-genai (the LLM providers speak HTTP), so its metadata's cap has nothing to clash with
    retrain = build_functions.requirements_for("retrain")
    assert "\ngoogle-cloud-aiplatform==" in retrain
    assert not [n for n in build_functions.function_names() if "google-genai==" in build_functions.requirements_for(n)]
    others = [n for n in build_functions.function_names() if n != "retrain"]
    assert not [n for n in others if "google-cloud-aiplatform" in build_functions.requirements_for(n)]
