"""Build one deployable zip per function: its folder + `shared/` + requirements.txt.

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
    entries.append(("requirements.txt", REPO / "requirements.txt"))
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{name}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arcname, path in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
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
