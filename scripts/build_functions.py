"""Build one deployable zip per function: its folder + `shared/` + its requirements.

    python scripts/build_functions.py [--out dist] [name ...]

Cloud Functions (2nd gen) builds a zip whose root holds `main.py` and
`requirements.txt`; `shared/` rides along as a package. Caches, tests and
local state never go in. The zip is deterministic (fixed timestamps, sorted
entries), so an unchanged function produces a byte-identical artifact.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS_DIR = REPO / "functions"
EXCLUDED_PARTS = {"__pycache__", ".pytest_cache", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
FIXED_TIME = (2020, 1, 1, 0, 0, 0)

#: serving packages (requirements.txt names) a function does not need, and the module each
#: would be imported as. Each function's zip carries requirements.txt minus its
#: exclusions: a smaller zip and a faster cold start. tests/deploy/test_build.py imports every
#: function with its excluded modules blocked, so an eager import of one fails there.
OPTIONAL_PACKAGES: dict[str, str] = {
    "google-cloud-firestore": "google.cloud.firestore",  # only the migrate_vectors CLI
    "pyarrow": "pyarrow",  # the nightly dataset export
    "google-cloud-pubsub": "google.cloud.pubsub_v1",  # publishing retrain requests
    "redis": "redis",  # the shared embedding cache and rate limits: where texts are embedded or LLMs called
    "google-cloud-aiplatform": "google.cloud.aiplatform_v1",  # Vertex AI training jobs (retrain)
}
_VERTEX_JOBS = "google-cloud-aiplatform"
EXCLUDED_PACKAGES: dict[str, set[str]] = {
    "chat": {"google-cloud-firestore", "pyarrow", "google-cloud-pubsub", _VERTEX_JOBS},
    "grading": {"google-cloud-firestore", "pyarrow", "google-cloud-pubsub", _VERTEX_JOBS},
    "prediction": {"google-cloud-firestore", "pyarrow", "redis", _VERTEX_JOBS},
    "feedback": {"google-cloud-firestore", "pyarrow", "redis", _VERTEX_JOBS},
    "retrain": {"google-cloud-firestore", "pyarrow", "google-cloud-pubsub", "redis"},
    "nightly": {"google-cloud-firestore", "redis", _VERTEX_JOBS},  # LLMs: the silver labels
}
#: requirement files appended to a function's requirements (packages that cannot share
#: requirements.txt with the rest; see requirements-vertex.txt)
EXTRA_REQUIREMENTS: dict[str, list[str]] = {"retrain": ["requirements-vertex.txt"]}


def requirements_for(name: str) -> str:
    """requirements.txt without the packages `name` does not need (comments kept), plus
    its extra requirement files."""
    excluded = EXCLUDED_PACKAGES.get(name, set())
    lines = []
    sources = ["requirements.txt", *EXTRA_REQUIREMENTS.get(name, [])]
    for line in (line for source in sources for line in (REPO / source).read_text().splitlines()):
        package = line.split("==")[0].strip().lower()
        if package and not line.lstrip().startswith("#") and package in excluded:
            continue
        lines.append(line)
    return "\n".join(lines) + "\n"


def function_names() -> list[str]:
    return sorted(p.parent.name for p in FUNCTIONS_DIR.glob("*/main.py"))


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not (set(p.relative_to(root).parts) & EXCLUDED_PARTS)
        and p.suffix not in EXCLUDED_SUFFIXES
        and not p.name.startswith("test_")
    )


def build(name: str, out_dir: Path) -> Path:
    folder = FUNCTIONS_DIR / name
    if not (folder / "main.py").is_file():
        raise SystemExit(f"unknown function {name!r}; known: {', '.join(function_names())}")
    entries: list[tuple[str, Path]] = [(str(p.relative_to(folder)), p) for p in _files(folder)]
    entries += [(f"shared/{p.relative_to(REPO / 'shared')}", p) for p in _files(REPO / "shared")]

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        files = [(arcname, path.read_bytes()) for arcname, path in entries]
        files.append(("requirements.txt", requirements_for(name).encode()))
        for arcname, data in sorted(files):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="functions to build (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "dist")
    args = parser.parse_args(argv)
    for name in args.names or function_names():
        path = build(name, args.out)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        print(
            f"{path.relative_to(REPO) if path.is_relative_to(REPO) else path}  "
            f"{path.stat().st_size / 1024:.0f} KiB  sha256:{digest}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
