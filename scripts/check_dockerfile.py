"""Static check of the training image definition (no docker daemon, no hadolint here).

    python scripts/check_dockerfile.py [model_export/Dockerfile]

Parses the Dockerfile (continuation lines joined, comments dropped) and refuses:
- a base image that is not pinned (no tag, `latest`, or a tag without a version number;
  a digest `@sha256:` is pinned);
- no `USER`, or a final `USER` that is root;
- no exec-form `ENTRYPOINT`, or one whose `python -m <module>` is not a module of the
  repository copied into the image;
- a `COPY` source that does not exist in the repository;
- torch installed without the CPU wheel index (`--index-url` with an `ARG` whose default
  ends in `/cpu`), or requirements-train.txt not installed.
Prints one line per problem; exit status 1 when there is any.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO / "model_export" / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
        current = ""
    if current:
        word, _, rest = current.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "")
    return bool(name) and bool(tag) and tag != "latest" and bool(re.search(r"\d", tag))


def check(path: Path, repo: Path = REPO) -> list[str]:
    steps = instructions(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    froms = [args.split()[0] for word, args in steps if word == "FROM" and args]
    if not froms:
        problems.append("no FROM")
    for image in froms:
        if not pinned(image):
            problems.append(f"base image {image!r} is not pinned (a versioned tag or @sha256)")

    users = [args.split()[0] for word, args in steps if word == "USER" and args]
    if not users:
        problems.append("no USER: the job would run as root")
    elif users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the final USER is {users[-1]!r}: the job would run as root")

    copied: list[str] = []
    for word, args in steps:
        if word in ("COPY", "ADD"):
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            for source in parts[:-1]:
                copied.append(source.rstrip("/"))
                if not (repo / source).exists():
                    problems.append(f"{word} source {source!r} does not exist in the repository")

    entry = [args for word, args in steps if word == "ENTRYPOINT"]
    if not entry:
        problems.append("no ENTRYPOINT")
    else:
        try:
            argv = json.loads(entry[-1])
        except json.JSONDecodeError:
            argv = None
        if not isinstance(argv, list) or not argv:
            problems.append("ENTRYPOINT is not in exec form (a JSON list)")
        elif len(argv) >= 3 and argv[1] == "-m":
            module = argv[2]
            file = Path(*module.split("."))
            candidates = [repo / file.with_suffix(".py"), repo / file / "__main__.py"]
            if not any(c.is_file() for c in candidates):
                problems.append(f"ENTRYPOINT module {module!r} does not exist in the repository")
            elif not any(module.replace(".", "/").startswith(c) for c in copied):
                problems.append(f"ENTRYPOINT module {module!r} is not copied into the image")

    runs = " ".join(args for word, args in steps if word == "RUN")
    arg_defaults = dict(a.split("=", 1) for word, args in steps if word == "ARG" for a in [args.split()[0]] if "=" in a)
    index = re.search(r"--index-url\s+\"?\$\{?(\w+)\}?\"?", runs)
    if "torch" not in runs or index is None:
        problems.append("torch is not installed from the CPU wheel index (--index-url ${TORCH_INDEX_URL})")
    elif not arg_defaults.get(index.group(1), "").rstrip("/").endswith("/cpu"):
        problems.append(f"ARG {index.group(1)} does not default to a CPU wheel index (…/cpu)")
    if "-r requirements-train.txt" not in runs:
        problems.append("requirements-train.txt is not installed")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT
    problems = check(path)
    for problem in problems:
        print(f"{path}: {problem}")
    if not problems:
        print(f"{path}: pinned base image, non-root USER, entry point exists, CPU torch")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
