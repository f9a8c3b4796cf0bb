"""CLI: export one date's dataset version (see shared/learning/datasets.py).

    python -m shared.learning.export --date 2026-11-30          # refuses if it exists (exit 0)
    python -m shared.learning.export                              # yesterday (UTC)
    python -m shared.learning.export --date 2026-11-30 --force    # rewrite
    python -m shared.learning.export --date 2026-11-30 --store /tmp/datasets

The store is DATASETS_URI (gs://<bucket>/datasets in the cloud), default <STATE_DIR>/datasets;
the database is the one every function uses (DATABASE_URL, Cloud SQL or the embedded server).
Prints the manifest as JSON. Exit codes: 0 written or already there, 2 refused (a day that
is not over, the cloud without DATASET_PSEUDONYM_KEY, a bad date).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from shared.learning.datasets import (
    DatasetExistsError,
    ExportRefusedError,
    export_dataset,
    open_datasets_store,
    parse_date,
)

# Re-exported for callers that think of this module as "the export".
from shared.learning.datasets import read_dataset as read_dataset


def yesterday() -> dt.date:
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.learning.export", description=__doc__.split("\n")[0])
    parser.add_argument("--date", help="UTC date YYYY-MM-DD (default: yesterday)")
    parser.add_argument("--store", help="datasets store URI or folder (default: DATASETS_URI or <state>/datasets)")
    parser.add_argument("--force", action="store_true", help="rewrite a version that exists")
    args = parser.parse_args(argv)
    try:
        date = parse_date(args.date) if args.date else yesterday()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from shared.db import get_engine

    store = open_datasets_store(args.store)
    try:
        result = export_dataset(get_engine(), store, date, force=args.force)
    except DatasetExistsError as exc:
        print(f"dataset version {date.isoformat()} already exists in {store.uri}; left as is", file=sys.stderr)
        print(json.dumps(exc.manifest, indent=2, sort_keys=True))
        return 0
    except ExportRefusedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows = {name: t["rows"] for name, t in result.manifest["tables"].items()}
    print(f"dataset version {date.isoformat()} written to {store.uri}: {rows}", file=sys.stderr)
    print(json.dumps(result.manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
