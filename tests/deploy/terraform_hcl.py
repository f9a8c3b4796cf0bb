"""Reading terraform/ for the static Terraform tests (tests/deploy/test_terraform_*.py).

`terraform init`/`validate` need the provider from the registry, which this machine
cannot reach, so the tests parse the HCL with python-hcl2 (pinned in
requirements-dev.txt; a missing package fails the tests, it does not skip them) and
check what validate would not anyway: that the infrastructure matches the code.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "terraform"
MODULE = TF / "modules" / "cognitive_core"
ENVIRONMENTS = ("dev", "prod")

#: Environment variables the functions read that are not fields of Settings.
NON_SETTINGS_ENV = {"ONNX_THREADS"}  # shared/models/onnx_model.py THREADS_ENV

REF = re.compile(
    r"\b(?:(var|local|module)\.([a-z0-9_]+)"
    r"|(data\.[a-z0-9_]+\.[a-z0-9_]+)"
    r"|((?:google_[a-z0-9_]+|terraform_data)\.[a-z0-9_]+))"
)


# --- parsing --------------------------------------------------------------------------


@cache
def load_dir(folder: Path) -> dict[str, list[Any]]:
    """All .tf files of one Terraform module, merged by top-level block type."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as fh:
            for key, blocks in hcl2.load(fh).items():
                if key != "__comments__":
                    merged.setdefault(key, []).extend(blocks)
    return merged


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted; expressions come as "${...}"."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def labels(key: str) -> str:
    return unquote(key)


def blocks(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    """`variable`/`output`/`module` blocks by name."""
    out: dict[str, dict[str, Any]] = {}
    for block in load_dir(folder).get(kind, []):
        for name, body in block.items():
            out[labels(name)] = body
    return out


def resources(folder: Path, kind: str = "resource") -> dict[str, dict[str, Any]]:
    """`resource`/`data` blocks keyed "type.name"."""
    out: dict[str, dict[str, Any]] = {}
    for block in load_dir(folder).get(kind, []):
        for rtype, named in block.items():
            for rname, body in named.items():
                out[f"{labels(rtype)}.{labels(rname)}"] = body
    return out


def module_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load_dir(MODULE).get("locals", []):
        merged.update({k: v for k, v in block.items() if not k.startswith("__")})
    return merged


def strings(node: Any) -> list[str]:
    """Every string value in a parsed tree (expressions included, comments excluded)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() if k != "__comments__" for s in strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def default_of(variable: dict[str, Any]) -> Any:
    value = variable.get("default")
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return unquote(value)


@cache
def settings_aliases() -> set[str]:
    from shared.config import Settings

    return {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}


def function_decorators() -> dict[str, str]:
    """functions/<name>/main.py -> "http" or "event", from the functions_framework
    decorator on the entry point named like the folder (what Terraform deploys)."""
    kinds = {}
    for main in sorted((REPO / "functions").glob("*/main.py")):
        name = main.parent.name
        match = re.search(rf"@functions_framework\.(http|cloud_event)\s*\ndef {name}\(", main.read_text())
        assert match, f"{main}: no functions_framework entry point named {name!r}"
        kinds[name] = "http" if match.group(1) == "http" else "event"
    return kinds


# --- the tests ----------------------------------------------------------------------------
