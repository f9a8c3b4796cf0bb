"""Print the steps a Cloud Build config would run, with its substitutions applied.

    python scripts/render_cloudbuild.py [cloudbuild.yaml] [_ENV=prod _TF_STATE_BUCKET=x ...]

A dry run of the build for a maintainer: every step's id, image, what it waits for and
its script, with `${_VAR}` / `$PROJECT_ID` replaced by the defaults in the file, then
the KEY=VALUE pairs given here (PROJECT_ID defaults to "my-project"). It fails (exit 1)
when a step uses a substitution that has no value, when a substitution value holds a
comma (gcloud's --substitutions would split it), or when a step waits for one that
does not exist.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
VAR = re.compile(r"\$\{(_[A-Z0-9_]+|PROJECT_ID|BUILD_ID)(:-[^}]*)?\}|\$(PROJECT_ID|BUILD_ID)\b")
BUILTIN = {"PROJECT_ID": "my-project", "BUILD_ID": "dry-run"}


def render(config: dict, overrides: dict[str, str]) -> tuple[str, list[str]]:
    values = {**BUILTIN, **{k: str(v) for k, v in (config.get("substitutions") or {}).items()}, **overrides}
    problems = [f"substitution {k}={v!r} holds a comma" for k, v in values.items() if "," in v]
    ids = {step.get("id") for step in config["steps"]}

    def sub(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(3)
            if name not in values:
                problems.append(f"no value for {name}")
                return match.group(0)
            fallback = (match.group(2) or "")[2:]
            return values[name] or fallback

        return VAR.sub(one, text)

    out = []
    if "serviceAccount" in config:
        out.append(f"# runs as {sub(config['serviceAccount'])}")
    for n, step in enumerate(config["steps"], 1):
        for dep in step.get("waitFor", []):
            if dep != "-" and dep not in ids:
                problems.append(f"step {step.get('id')} waits for unknown step {dep}")
        after = ", ".join(step.get("waitFor", [])) or "start"
        out.append(f"## {n}. {step.get('id', '?')}  [{sub(step['name'])}]  after: {after}")
        if step.get("args"):
            out.append("   " + sub(" ".join(step["args"])))
        if step.get("script"):
            out.extend("   " + line for line in sub(step["script"]).splitlines() if line.strip())
    return "\n".join(out), problems


def main(argv: list[str]) -> int:
    files = [a for a in argv if "=" not in a] or ["cloudbuild.yaml"]
    overrides = dict(a.split("=", 1) for a in argv if "=" in a)
    failed = False
    for name in files:
        text, problems = render(yaml.safe_load((REPO / name).read_text()), overrides)
        print(f"# ---- {name} ----\n{text}\n")
        for problem in sorted(set(problems)):
            print(f"PROBLEM {name}: {problem}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
