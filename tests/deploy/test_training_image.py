"""The training image definition, checked statically (no docker daemon on this machine).

The real model_export/Dockerfile passes scripts/check_dockerfile.py; copies broken in one
way each are refused, so the check can fail. The image's entry point is the command the
Vertex AI launcher runs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "model_export" / "Dockerfile"
ENTRY = 'ENTRYPOINT ["python", "-m", "model_export.retrain"]'


@pytest.fixture(scope="module")
def checker():
    spec = importlib.util.spec_from_file_location("check_dockerfile", REPO / "scripts" / "check_dockerfile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_training_dockerfile_passes(checker):
    assert checker.check(DOCKERFILE) == []
    run = subprocess.run([sys.executable, "scripts/check_dockerfile.py"], cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("FROM python:3.11.11-slim-bookworm", "FROM python:latest", "not pinned"),
        ("FROM python:3.11.11-slim-bookworm", "FROM python", "not pinned"),
        ("USER trainer", "", "no USER"),
        ("USER trainer", "USER root", "final USER is 'root'"),
        (ENTRY, ENTRY.replace("model_export.retrain", "model_export.nope"), "does not exist"),
        (ENTRY, "ENTRYPOINT python -m model_export.retrain", "exec form"),
        ("COPY model_export/ model_export/", "COPY model_export/data/ model_export/data/", "not copied"),
        ("COPY tests/golden_queries.json", "COPY tests/golden_queries.yaml", "does not exist"),
        ("whl/cpu", "whl/cu128", "CPU wheel index"),
        ('pip install --index-url "${TORCH_INDEX_URL}" "$torch_pin"', 'pip install "$torch_pin"', "CPU wheel index"),
        ("pip install -r requirements-train.txt", "pip install numpy", "requirements-train.txt is not installed"),
    ],
)
def test_a_broken_dockerfile_is_refused(checker, tmp_path: Path, old: str, new: str, problem: str):
    text = DOCKERFILE.read_text()
    assert old in text, old
    broken = tmp_path / "Dockerfile"
    broken.write_text(text.replace(old, new))
    problems = checker.check(broken)
    assert any(problem in p for p in problems), problems


def test_the_entry_point_is_what_the_vertex_launcher_runs(checker):
    from shared.learning.vertex_jobs import JOB_COMMAND

    entry = [args for word, args in checker.instructions(DOCKERFILE.read_text()) if word == "ENTRYPOINT"]
    assert json.loads(entry[-1]) == JOB_COMMAND


def test_torch_in_the_image_is_the_pinned_version():
    pins = dict(line.split("==") for line in (REPO / "requirements-train.txt").read_text().splitlines() if "==" in line)
    assert pins["torch"] == "2.13.0"
    assert "grep -E '^torch==' requirements-train.txt" in DOCKERFILE.read_text()


def test_the_build_context_keeps_out_local_state():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything out, then back in only what the image copies
    assert not [line for line in ignore if line.startswith("!") and (".state" in line or ".venv" in line)]
    for needed in ("!shared/", "!model_export/", "!tests/golden_queries.json", "!requirements-train.txt"):
        assert needed in ignore
