"""Load legacy knowledge nodes into Postgres with their embeddings.

    python -m shared.rag.migrate_vectors --json nodes.json
    python -m shared.rag.migrate_vectors --firestore knowledge_nodes [--project my-project]

Idempotent and resumable: unchanged chunks are skipped by content hash and
encoder, and each batch is committed as it completes. Each batch is written with one
binary COPY and one upsert; a load of at least 10,000 chunks that is at least as large
as the table drops the HNSW and full-text indexes and builds them once at the end (with
--maintenance-work-mem; --rebuild-indexes always|never overrides the choice). A run
always ends by building an index that is missing, so a run that crashed mid-load is
finished by the next. Exit status 0 when every node loaded, 3 when some nodes were
malformed (they are listed; the rest loaded).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tqdm import tqdm

from shared.config import get_settings
from shared.db.engine import get_engine
from shared.db.migrate import upgrade
from shared.logs import configure_logging
from shared.rag.knowledge_base import migrate_nodes, nodes_from_firestore, nodes_from_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.rag.migrate_vectors",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--json", type=Path, help="a JSON file of nodes (list or {'nodes': [...]})")
    source.add_argument("--firestore", metavar="COLLECTION", help="a Firestore collection of nodes")
    parser.add_argument("--project", help="Firestore project (default: GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--batch-size", type=int, default=512, help="chunks embedded and committed together")
    parser.add_argument("--rebuild-indexes", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--maintenance-work-mem", default="1GB", help="memory for building the indexes")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    settings = get_settings()
    configure_logging(settings.log_level)
    from shared.embeddings.service import get_embedding_service

    service = get_embedding_service()
    engine = get_engine()
    upgrade(engine)
    if args.json:
        if not args.json.is_file():
            print(f"error: no such file {args.json}", file=sys.stderr)
            return 2
        nodes = nodes_from_json(args.json)
    else:
        nodes = nodes_from_firestore(args.firestore, project=args.project or settings.gcp_project)

    with tqdm(unit="chunk", desc="migrating", disable=args.no_progress, file=sys.stderr) as bar:
        summary = migrate_nodes(
            engine,
            nodes,
            service.embed,
            service.model_name,
            batch_size=args.batch_size,
            progress=bar.update,
            rebuild_indexes={"auto": None, "always": True, "never": False}[args.rebuild_indexes],
            maintenance_work_mem=args.maintenance_work_mem,
        )
    print(json.dumps({"embedding_model": service.model_name, **summary.as_dict()}, indent=2))
    return 3 if summary.bad_nodes else 0


if __name__ == "__main__":
    sys.exit(main())
