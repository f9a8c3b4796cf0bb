"""Reading one dated snapshot of the Parquet dataset export, and the stable split.

The nightly export (shared/learning, another module) writes, under `DATASETS_URI`
(`gs://bucket/datasets` or a local folder, opened as an artifact store):

    <table>/date=YYYY-MM-DD/part-00000.parquet   tables: interactions, labels, feedback,
                                                 attempts, generation_log (user ids pseudonymised)
    manifests/YYYY-MM-DD.json                    written LAST: {"date", "schema_version",
                                                 "tables": {table: {"path", "sha256", "rows", ...}}}

(`shared.learning.datasets` writes it; this reader cannot import that module, which needs
the serving stack's database packages, so the layout is restated here and tested against
files the real exporter wrote in tests/learning.)

A date is a snapshot only once its manifest exists, and only the files the manifest
lists are read (each checked against its sha256), so the training job never reads a
table mid-write. `Snapshot.record()` is what the job writes into the run and the
version manifest.

Columns this module reads (extra columns are ignored; the exporter's names first, the
short names this module's own `write_snapshot` uses second):
- labels:   interaction_id, query | text, label, labelled_at   (label events: the last wins)
- attempts: user_pseudonym | user_id, topic_id, question_id, difficulty, correct,
            time_seconds | seconds, completed_at
- silver_labels (optional): interaction_id, query | text, label, confidence, prompt_version,
            created_at   (an LLM's labels; the newest per interaction wins)
- conversations (optional): conversation_id, label, messages (json: [{text, seconds}])

The split is by a stable hash of the item id (`split_of`): an item lands in the same
part in every run, so the test split of any earlier version can be rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

from shared.artifacts.store import ArtifactStore, open_store

MANIFESTS = "manifests"
TABLES = ("interactions", "labels", "feedback", "attempts", "generation_log", "silver_labels")
PARTS = ("train", "val", "test")
#: bump only with a migration plan: changing it moves items between train and test
SPLIT_SALT = "cognitive-core/split/v1"


class SnapshotMissing(FileNotFoundError):
    """No complete snapshot for that date (no manifest: absent or still being written)."""


class SnapshotCorrupt(RuntimeError):
    """A file of the snapshot does not match the manifest."""


def split_of(item_id: str) -> str:
    """'train' (80%), 'val' (10%) or 'test' (10%), from sha256(salt:item id) alone."""
    bucket = int.from_bytes(hashlib.sha256(f"{SPLIT_SALT}:{item_id}".encode()).digest()[:8], "big") % 10
    return "test" if bucket == 9 else "val" if bucket == 8 else "train"


@dataclass(frozen=True)
class LabelRow:
    interaction_id: str
    text: str
    label: str


@dataclass(frozen=True)
class SilverRow:
    """An LLM's label of a query (silver standard): trained on with a lower weight."""

    interaction_id: str
    text: str
    label: str
    confidence: float


@dataclass(frozen=True)
class AttemptRow:
    user_id: str  # pseudonymous
    topic_id: str
    question_id: str
    difficulty: int
    correct: float
    seconds: float | None
    completed_at: str  # ISO timestamp; orders a user's attempts


@dataclass
class Snapshot:
    """One dated, complete export: its rows and where they came from."""

    date: str
    uri: str
    manifest_sha256: str
    rows: dict[str, int]
    labels: list[LabelRow] = field(default_factory=list)
    attempts: list[AttemptRow] = field(default_factory=list)
    silver: list[SilverRow] = field(default_factory=list)
    conversations: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict:
        """What a run and a version manifest say about their training data."""
        return {
            "uri": self.uri,
            "date": self.date,
            "manifest_sha256": self.manifest_sha256,
            "rows": self.rows,
            "split": f"sha256('{SPLIT_SALT}:' + item id) mod 10: 0-7 train, 8 val, 9 test",
        }


def _open(store: ArtifactStore | str) -> ArtifactStore:
    return store if isinstance(store, ArtifactStore) else open_store(store)


PART = "part-00000.parquet"


def manifest_key(date: str) -> str:
    return f"{MANIFESTS}/{date}.json"


def list_dates(store: ArtifactStore | str) -> list[str]:
    """Dates with a complete snapshot, oldest first."""
    store = _open(store)
    stems = (k.rsplit("/", 1)[-1].removesuffix(".json") for k in store.list(f"{MANIFESTS}/") if k.endswith(".json"))
    return sorted(d for d in stems if len(d) == 10 and d[4] == "-" and d[7] == "-")


def _files(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """The files of one table's manifest entry: the exporter writes one (`path`)."""
    if "path" in entry:
        return [{"key": entry["path"], "sha256": entry.get("sha256")}]
    return list(entry.get("files", []))


def load_snapshot(store_uri: ArtifactStore | str, date: str = "latest") -> Snapshot:
    """The snapshot of `date` ('latest' = the newest complete one)."""
    import pyarrow.parquet as pq

    store = _open(store_uri)
    if date == "latest":
        dates = list_dates(store)
        if not dates:
            raise SnapshotMissing(f"no complete dataset snapshot in {store.uri}")
        date = dates[-1]
    try:
        raw = store.read_bytes(manifest_key(date))
    except FileNotFoundError as exc:
        raise SnapshotMissing(f"no complete snapshot for {date} in {store.uri} (no {manifest_key(date)})") from exc
    manifest = json.loads(raw)
    tables: dict[str, list[dict]] = {}
    for table, entry in manifest.get("tables", {}).items():
        rows: list[dict] = []
        for item in _files(entry):
            data = store.read_bytes(item["key"])
            if item.get("sha256") and hashlib.sha256(data).hexdigest() != item["sha256"]:
                raise SnapshotCorrupt(f"{item['key']} does not match the {date} manifest")
            rows += pq.read_table(io.BytesIO(data)).to_pylist()
        tables[table] = rows
    snapshot = Snapshot(
        date=date,
        uri=store.uri,
        manifest_sha256=hashlib.sha256(raw).hexdigest(),
        rows={t: len(r) for t, r in sorted(tables.items())},
    )
    latest: dict[str, LabelRow] = {}  # label events in time order: a relabel replaces
    for r in sorted(tables.get("labels", []), key=lambda r: str(r.get("labelled_at") or "")):
        text = r.get("query") or r.get("text")
        if text and r.get("label"):
            latest[str(r["interaction_id"])] = LabelRow(str(r["interaction_id"]), str(text), str(r["label"]))
    snapshot.labels = list(latest.values())
    silver: dict[str, SilverRow] = {}  # newest silver label per interaction
    for r in sorted(tables.get("silver_labels", []), key=lambda r: str(r.get("created_at") or "")):
        text = r.get("query") or r.get("text")
        if text and r.get("label"):
            iid = str(r["interaction_id"])
            silver[iid] = SilverRow(iid, str(text), str(r["label"]), float(r.get("confidence") or 0.0))
    snapshot.silver = list(silver.values())
    snapshot.attempts = sorted(
        (
            AttemptRow(
                str(r.get("user_pseudonym") or r.get("user_id")),
                str(r["topic_id"]),
                str(r.get("question_id") or ""),
                int(r.get("difficulty") or 3),
                float(r["correct"]),
                _seconds(r),
                str(r.get("completed_at") or ""),
            )
            for r in tables.get("attempts", [])
            if r.get("correct") is not None
        ),
        key=lambda a: (a.user_id, a.completed_at),
    )
    snapshot.conversations = [r for r in tables.get("conversations", []) if r.get("label") is not None]
    return snapshot


def _seconds(row: dict[str, Any]) -> float | None:
    value = row.get("time_seconds", row.get("seconds"))
    return None if value is None else float(value)


def write_snapshot(store_uri: ArtifactStore | str, date: str, tables: dict[str, list[dict]]) -> str:
    """Write tables as one snapshot (Parquet files, then the manifest last).

    The exporter's contract in a few lines: tests and the demo use it; the nightly
    export writes the same layout.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = _open(store_uri)
    entries: dict[str, dict] = {}
    for table, rows in tables.items():
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        data = buffer.getvalue()
        key = f"{table}/date={date}/{PART}"
        store.write_bytes(key, data)
        entries[table] = {"path": key, "rows": len(rows), "sha256": hashlib.sha256(data).hexdigest()}
    store.write_bytes(manifest_key(date), json.dumps({"date": date, "tables": entries}, indent=2).encode())
    return date
