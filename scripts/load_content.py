"""Load course content into the environment's database: curriculum, questions and the
knowledge base, with their embeddings.

    python scripts/load_content.py --course gs://BUCKET/content/course.json \
        [--nodes gs://BUCKET/content/knowledge_nodes.json | --firestore COLLECTION]

`--course` (repeatable) is a course file (courses with topics, knowledge nodes and
questions; local/demo/course.json is one) loaded with shared.curriculum; `--nodes`
or `--firestore` runs the knowledge-base migration (shared.rag.migrate_vectors) on
legacy nodes. Paths may be local files or gs:// objects. Both loads are idempotent
upserts that re-embed only changed text, so re-running after an edit is cheap.

It runs as the deployer (scripts/migrate.sh, through cloudbuild.migrate.yaml): the
connection settings come from the environment (CLOUD_SQL_INSTANCE, DB_USER,
DB_IAM_AUTH, ...) and the encoder from MODEL_STORE_URI, so run it after a model
version is published: without an encoder the nodes would load without embeddings,
which this script refuses (exit 4) unless --allow-no-embeddings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def fetch(uri: str, folder: Path) -> Path:
    """A local path for `uri`: itself, or a download of a gs:// object."""
    if not uri.startswith("gs://"):
        path = Path(uri)
        if not path.is_file():
            raise SystemExit(f"error: no such file {uri}")
        return path
    from google.cloud import storage

    bucket, _, name = uri[len("gs://") :].partition("/")
    target = folder / Path(name).name
    storage.Client().bucket(bucket).blob(name).download_to_filename(str(target))
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/load_content.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--course", action="append", default=[], help="course JSON (file or gs://), repeatable")
    nodes = parser.add_mutually_exclusive_group()
    nodes.add_argument("--nodes", help="legacy knowledge nodes as JSON (file or gs://) for migrate_vectors")
    nodes.add_argument("--firestore", metavar="COLLECTION", help="legacy knowledge nodes in Firestore")
    parser.add_argument("--allow-no-embeddings", action="store_true", help="load even without an encoder")
    args = parser.parse_args(argv)
    if not (args.course or args.nodes or args.firestore):
        parser.error("nothing to load: give --course, --nodes or --firestore")

    sys.path.insert(0, str(REPO))
    from shared.config import get_settings
    from shared.curriculum import load_course_file
    from shared.db.engine import get_engine
    from shared.logs import configure_logging

    configure_logging(get_settings().log_level)
    try:
        from shared.embeddings.service import get_embedding_service

        service = get_embedding_service()
        service.embed_one("warm-up")
        embed, model = service.embed, service.model_name
    except Exception as exc:  # noqa: BLE001 - reported, then refused or accepted on purpose
        if not args.allow_no_embeddings:
            print(f"error: no encoder ({exc}); publish a model version first (MODEL_STORE_URI)", file=sys.stderr)
            return 4
        embed, model = None, None

    report: dict[str, object] = {"embedding_model": model}
    engine = get_engine()
    with tempfile.TemporaryDirectory() as tmp:
        for uri in args.course:
            with engine.begin() as conn:
                summary = load_course_file(conn, fetch(uri, Path(tmp)), embed=embed, embedding_model=model)
            report[uri] = summary.__dict__
        if args.nodes or args.firestore:
            from shared.rag.migrate_vectors import main as migrate_vectors

            source = ["--json", str(fetch(args.nodes, Path(tmp)))] if args.nodes else ["--firestore", args.firestore]
            vector_args = ["--no-progress", *source]
            status = migrate_vectors(vector_args)
            report["knowledge_base_exit_status"] = status
            if status not in (0, 3):
                print(json.dumps(report))
                return status
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
