"""`python -m model_export <command>`: build, status, promote.

build    export/train, quantize, gate and publish the next version (skips when up to date)
status   the store, current.json and the published versions
promote  point current.json at an existing version (rollback or roll forward)
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_export", description=__doc__.splitlines()[0])
    parser.add_argument("--store", help="gs://bucket/prefix or a folder (default: settings.model_store)")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build and publish the next model version")
    b.add_argument("--seed", type=int, default=42)
    b.add_argument("--force", action="store_true", help="rebuild even when up to date")
    b.add_argument("--models", help="comma-separated subset, e.g. encoder (default: all)")
    b.add_argument("--no-promote", action="store_true", help="publish without moving current.json")
    b.add_argument("--require", help="comma-separated models the version must contain, e.g. grader,predictor")
    sub.add_parser("status", help="show current.json and the published versions")
    p = sub.add_parser("promote", help="point current.json at an existing version")
    p.add_argument("version")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from shared.artifacts.store import open_store
    from shared.artifacts.versions import list_versions, read_current, read_manifest, set_current

    store = open_store(args.store)
    if args.command == "build":
        from model_export.build import build

        try:
            build(
                store=store,
                seed=args.seed,
                models=args.models.split(",") if args.models else None,
                force=args.force,
                promote=not args.no_promote,
                require=args.require.split(",") if args.require else None,
            )
        except (RuntimeError, ValueError) as exc:
            logging.getLogger("model_export").error("build failed: %s", exc)
            return 1
        return 0
    if args.command == "status":
        pointer = read_current(store)
        print(
            json.dumps(
                {
                    "store": store.uri,
                    "current": pointer.__dict__ if pointer else None,
                    "versions": {
                        v: {
                            "created": (m := read_manifest(store, v)).get("created"),
                            "parent": m.get("parent"),
                            "models": sorted(m.get("models", {})),
                        }
                        for v in list_versions(store)
                    },
                },
                indent=2,
            )
        )
        return 0
    if args.command == "promote":
        if args.version not in list_versions(store):
            print(f"no complete version {args.version} in {store.uri}", file=sys.stderr)
            return 1
        print(json.dumps(set_current(store, args.version).__dict__))
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
