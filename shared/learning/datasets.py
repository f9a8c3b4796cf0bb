"""Dataset versions: the nightly Parquet export of the learning history, and reading it back.

One dataset version per UTC date D holds what happened in [D 00:00Z, D+1 00:00Z):

    datasets/<table>/date=YYYY-MM-DD/part-00000.parquet   one file per table (Hive layout)
    datasets/manifests/YYYY-MM-DD.json                    the version's manifest, written last

Tables (see `TABLES` for every column, and docs/learning.md for why each leaves the
database): `interactions` (by created_at), `labels` (label changes by labelled_at, with the
query they label), `feedback` (thumbs by feedback_at), `attempts` (completed, counted task
attempts by completed_at; repeats and bare predictions are not training data),
`generation_log` (LLM calls by created_at, without prompts or responses),
`silver_labels` (an LLM's intent labels by created_at, with the query they label) and
`conversations` (human confusion labels of chat turns by labelled_at, each with its last
three student messages).

Personal data: user and session ids are pseudonymised with a keyed hash (HMAC-SHA256
with DATASET_PSEUDONYM_KEY, stable across dates so a student's history stays linkable
for training but not reversible without the key); free-text comments, replies, typed
answers, grader feedback, prompts and raw LLM responses never leave; the query text,
which the intent model trains on, is exported with e-mail addresses, URLs with
credentials and long digit runs (phone, card, id numbers) redacted.

Idempotent per date: the manifest is the version's commit point, created only if absent.
A second export of a date that has a manifest refuses (`DatasetExistsError`; the CLI
reports it and exits 0) unless `force=True`, which rewrites. The bytes are deterministic
(rows ordered by a stable key, fixed Parquet options, no wall-clock time in the files or
the manifest), so a forced re-export of unchanged data rewrites the same bytes. A date
that is not over yet (today or later, UTC) is refused: its version would change.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import io
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from shared.artifacts.manifest import sha256_bytes
from shared.artifacts.store import ArtifactStore, KeyExistsError, open_store

SCHEMA_VERSION = 1
MANIFESTS = "manifests"
PART = "part-00000.parquet"
LOCAL_DEV_KEY = "cognitive-core-local-development-pseudonym-key"  # never used in the cloud
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "version": "2.6",
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 64 * 1024,
}

TS = pa.timestamp("us", tz="UTC")


class DatasetError(RuntimeError):
    """Base of the dataset errors."""


class DatasetExistsError(DatasetError):
    """The date already has a dataset version (export refuses to rewrite it)."""

    def __init__(self, date: dt.date, manifest: dict[str, Any]) -> None:
        super().__init__(f"dataset version {date.isoformat()} exists; pass force=True (--force) to rewrite it")
        self.manifest = manifest


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """No dataset version for that date (no manifest)."""


class CorruptDatasetError(DatasetError):
    """A file of the version does not match its manifest."""


class ExportRefusedError(DatasetError):
    """The export cannot run as asked (a day that is not over, the cloud without a key)."""


# --- what leaves the database ----------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    source: str  # SQL expression in the table's query
    transform: str | None = None  # "pseudonym", "redact", "json"


@dataclass(frozen=True)
class TableSpec:
    name: str
    time_column: str  # the column that places a row in a date
    from_sql: str  # FROM ... WHERE <time> >= :start AND <time> < :end
    order_by: str
    columns: tuple[Column, ...]
    description: str = ""

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type) for c in self.columns])

    def sql(self) -> str:
        select = ", ".join(f"{c.source} AS {c.name}" for c in self.columns)
        return f"SELECT {select} {self.from_sql} ORDER BY {self.order_by}"


def _c(name: str, type_: pa.DataType, source: str | None = None, transform: str | None = None) -> Column:
    return Column(name, type_, source or name, transform)


TABLES: dict[str, TableSpec] = {
    "interactions": TableSpec(
        "interactions",
        "created_at",
        "FROM interactions i WHERE i.created_at >= :start AND i.created_at < :end",
        "i.created_at, i.id",
        (
            _c("id", pa.string(), "i.id::text"),
            _c("created_at", TS, "i.created_at"),
            _c("user_pseudonym", pa.string(), "i.user_id", "pseudonym"),
            _c("session_pseudonym", pa.string(), "i.session_id::text", "pseudonym"),
            _c("kind", pa.string(), "i.kind"),
            _c("query", pa.string(), "i.query", "redact"),
            _c("topic_id", pa.string(), "i.topic_id"),
            _c("intent", pa.string(), "i.intent"),
            _c("intent_probs", pa.string(), "i.intent_probs", "json"),
            _c("intent_confidence", pa.float64(), "i.intent_confidence"),
            _c("intent_source", pa.string(), "i.intent_source"),
            _c("confusion_score", pa.float64(), "i.confusion_score"),
            _c("is_confused", pa.bool_(), "i.is_confused"),
            _c("mastery", pa.float64(), "i.mastery"),
            _c("retrieved_node_ids", pa.list_(pa.string()), "i.retrieved_node_ids"),
            _c("prompt_key", pa.string(), "i.prompt_key"),
            _c("provider", pa.string(), "i.provider"),
            _c("llm_model", pa.string(), "i.llm_model"),
            _c("model_versions", pa.string(), "i.model_versions", "json"),
            _c("tokens_in", pa.int64(), "i.tokens_in"),
            _c("tokens_out", pa.int64(), "i.tokens_out"),
            _c("latency_ms", pa.float64(), "i.latency_ms"),
            _c("needs_review", pa.bool_(), "i.needs_review"),
            _c("feedback_score", pa.int8(), "i.feedback_score"),
            _c("human_label", pa.string(), "i.human_label"),
        ),
        "every tutor turn: the query (redacted), each model's prediction and version, the outcome",
    ),
    "labels": TableSpec(
        "labels",
        "labelled_at",
        "FROM label_events e JOIN interactions i ON i.id = e.interaction_id "
        "WHERE e.labelled_at >= :start AND e.labelled_at < :end",
        "e.labelled_at, e.id",
        (
            _c("event_id", pa.int64(), "e.id"),
            _c("interaction_id", pa.string(), "e.interaction_id::text"),
            _c("labelled_at", TS, "e.labelled_at"),
            _c("old_label", pa.string(), "e.old_label"),
            _c("label", pa.string(), "e.new_label"),
            _c("labeller_pseudonym", pa.string(), "e.labelled_by", "pseudonym"),
            _c("model", pa.string(), "e.model"),
            _c("model_version", pa.string(), "e.model_version"),
            _c("query", pa.string(), "i.query", "redact"),
            _c("predicted_intent", pa.string(), "i.intent"),
            _c("intent_confidence", pa.float64(), "i.intent_confidence"),
            _c("interaction_created_at", TS, "i.created_at"),
        ),
        "human label changes (the latest per interaction is the verified label), with the query they label",
    ),
    "feedback": TableSpec(
        "feedback",
        "feedback_at",
        "FROM interactions i WHERE i.feedback_at >= :start AND i.feedback_at < :end",
        "i.feedback_at, i.id",
        (
            _c("interaction_id", pa.string(), "i.id::text"),
            _c("feedback_at", TS, "i.feedback_at"),
            _c("user_pseudonym", pa.string(), "i.user_id", "pseudonym"),
            _c("score", pa.int8(), "i.feedback_score"),
            _c("has_comment", pa.bool_(), "(i.feedback_comment IS NOT NULL AND i.feedback_comment <> '')"),
            _c("intent", pa.string(), "i.intent"),
            _c("prompt_key", pa.string(), "i.prompt_key"),
            _c("llm_model", pa.string(), "i.llm_model"),
        ),
        "thumbs up/down by the time they were given (the latest state of each reply's rating)",
    ),
    "attempts": TableSpec(
        "attempts",
        "completed_at",
        "FROM task_attempts a WHERE a.status = 'completed' AND a.completed_at >= :start AND a.completed_at < :end",
        "a.completed_at, a.id",
        (
            _c("id", pa.string(), "a.id::text"),
            _c("user_pseudonym", pa.string(), "a.user_id", "pseudonym"),
            _c("question_id", pa.string(), "a.question_id"),
            _c("topic_id", pa.string(), "a.topic_id"),
            _c("difficulty", pa.int16(), "a.difficulty"),
            _c("predicted_correct", pa.float64(), "a.predicted_correct"),
            _c("predicted_seconds", pa.float64(), "a.predicted_seconds"),
            _c("predictor", pa.string(), "a.predictor"),
            _c("predictor_version", pa.string(), "a.predictor_version"),
            _c("correct", pa.bool_(), "a.correct"),
            _c("score", pa.float64(), "a.score"),
            _c("verdict", pa.string(), "a.verdict"),
            _c("grader", pa.string(), "a.grader"),
            _c("grader_version", pa.string(), "a.grader_version"),
            _c("time_seconds", pa.float64(), "a.time_seconds"),
            _c("created_at", TS, "a.created_at"),
            _c("completed_at", TS, "a.completed_at"),
        ),
        "completed, counted task attempts: the predictor's training data (no typed answers, no grader text)",
    ),
    "generation_log": TableSpec(
        "generation_log",
        "created_at",
        "FROM generation_log g WHERE g.created_at >= :start AND g.created_at < :end",
        "g.created_at, g.id",
        (
            _c("id", pa.int64(), "g.id"),
            _c("interaction_id", pa.string(), "g.interaction_id::text"),
            _c("created_at", TS, "g.created_at"),
            _c("task", pa.string(), "g.task"),
            _c("provider", pa.string(), "g.provider"),
            _c("model", pa.string(), "g.model"),
            _c("status", pa.string(), "g.status"),
            _c("tokens_in", pa.int64(), "g.tokens_in"),
            _c("tokens_out", pa.int64(), "g.tokens_out"),
            _c("cost_usd", pa.float64(), "g.cost_usd::float8"),
            _c("latency_ms", pa.float64(), "g.latency_ms"),
        ),
        "LLM calls: provider, model, status, tokens, cost, latency (no prompt, response or error text)",
    ),
    "silver_labels": TableSpec(
        "silver_labels",
        "created_at",
        "FROM silver_labels s JOIN interactions i ON i.id = s.interaction_id "
        "WHERE s.created_at >= :start AND s.created_at < :end",
        "s.created_at, s.id",
        (
            _c("id", pa.int64(), "s.id"),
            _c("interaction_id", pa.string(), "s.interaction_id::text"),
            _c("created_at", TS, "s.created_at"),
            _c("label", pa.string(), "s.label"),
            _c("confidence", pa.float64(), "s.confidence::float8"),
            _c("provider", pa.string(), "s.provider"),
            _c("llm_model", pa.string(), "s.llm_model"),
            _c("prompt_version", pa.string(), "s.prompt_version"),
            _c("taxonomy_version", pa.string(), "s.taxonomy_version"),
            _c("model_intent", pa.string(), "s.model_intent"),
            _c("agrees", pa.bool_(), "s.agrees"),
            _c("query", pa.string(), "i.query", "redact"),
            _c("interaction_created_at", TS, "i.created_at"),
        ),
        "an LLM's intent labels of unlabelled queries (silver standard, kept apart from human labels)",
    ),
    "conversations": TableSpec(
        "conversations",
        "labelled_at",
        "FROM interactions i CROSS JOIN LATERAL ("
        " SELECT json_agg(json_build_object('text', w.query, 'at', w.created_at) ORDER BY w.created_at) AS msgs"
        " FROM (SELECT p.query, p.created_at FROM interactions p"
        "        WHERE p.user_id = i.user_id AND p.created_at <= i.created_at"
        "          AND (p.id = i.id OR (i.session_id IS NOT NULL AND p.session_id = i.session_id))"
        "        ORDER BY p.created_at DESC, p.id DESC LIMIT 4) w) m "
        "WHERE i.confusion_labelled_at >= :start AND i.confusion_labelled_at < :end",
        "i.confusion_labelled_at, i.id",
        (
            _c("conversation_id", pa.string(), "i.id::text"),
            _c("labelled_at", TS, "i.confusion_labelled_at"),
            _c("label", pa.int8(), "CASE WHEN i.confusion_label THEN 1 ELSE 0 END"),
            _c("messages", pa.string(), "m.msgs", "conversation"),
            _c("model_score", pa.float64(), "i.confusion_score"),
            _c("model_confused", pa.bool_(), "i.is_confused"),
            _c("labeller_pseudonym", pa.string(), "i.confusion_labelled_by", "pseudonym"),
        ),
        "human confusion labels of chat turns, each with the turn and up to two student messages before it "
        "in its session (redacted), oldest first, and the seconds between them",
    ),
}

#: What stays in the database, per exported table (documented in docs/learning.md).
WITHHELD: dict[str, tuple[str, ...]] = {
    "interactions": ("user_id (pseudonymised)", "session_id (pseudonymised)", "request_id", "reply", "feedback_comment",
                     "labelled_by", "timings_ms"),
    "labels": ("labelled_by (pseudonymised)",),
    "feedback": ("feedback_comment (only whether there was one)",),
    "attempts": ("user_id (pseudonymised)", "answer", "feedback", "repeat and predicted-only attempts"),
    "generation_log": ("request_id", "prompt", "raw_response", "error"),
    "silver_labels": (),
    "conversations": ("confusion_labelled_by (pseudonymised)", "replies"),
}  # fmt: skip


# --- pseudonyms and redaction ---------------------------------------------------------------------


class Pseudonymiser:
    """HMAC-SHA256 of an id under the deployment's key: stable, not reversible without it."""

    def __init__(self, key: str | bytes) -> None:
        self._key = key.encode() if isinstance(key, str) else bytes(key)
        if len(self._key) < 16:
            raise ExportRefusedError("DATASET_PSEUDONYM_KEY must be at least 16 bytes")

    def __call__(self, value: str | None) -> str | None:
        if value is None:
            return None
        return hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()[:32]

    @property
    def key_id(self) -> str:
        """Names the key in manifests without revealing it."""
        return hashlib.sha256(b"key-id:" + self._key).hexdigest()[:12]


def pseudonymiser_from_settings(settings: Any = None) -> Pseudonymiser:
    """The deployment's pseudonymiser; refuses to run in the cloud without a key."""
    if settings is None:
        from shared.config import get_settings

        settings = get_settings()
    secret = settings.dataset_pseudonym_key
    if secret is None:
        if settings.environment == "cloud":
            raise ExportRefusedError("DATASET_PSEUDONYM_KEY is not set: refusing to export in the cloud")
        return Pseudonymiser(LOCAL_DEV_KEY)
    return Pseudonymiser(secret.get_secret_value())


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_CREDENTIAL_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s/@]+@\S+", re.IGNORECASE)
_DIGITS = re.compile(r"(?<![\w.])\+?\d(?:[\s().-]?\d){6,}(?![\w.])")


def redact(text: str | None) -> str | None:
    """Best-effort scrub of contact and account data in free text the models train on."""
    if text is None:
        return None
    text = _CREDENTIAL_URL.sub("<url>", text)
    text = _EMAIL.sub("<email>", text)
    return _DIGITS.sub(_number, text)


def _number(match: re.Match[str]) -> str:
    """Phone-like runs (separators, a leading + or 0) of 7+ digits, and any run of 9+ digits;
    a bare literal like 1000000 in a code question stays."""
    raw = match.group(0)
    digits = sum(ch.isdigit() for ch in raw)
    phone_like = not raw.isdigit() or raw.startswith(("+", "0"))
    return "<number>" if digits >= 9 or phone_like else raw


def conversation_window(value: Any) -> str | None:
    """The last 3 messages (of up to 4, oldest first, `{text, at}`) as the confusion
    detector reads them: `[{text (redacted), seconds since the previous message}]`; the
    fourth, oldest one only gives the first kept message its gap."""
    if value is None:
        return None
    rows = json.loads(value) if isinstance(value, str) else value
    times = [dt.datetime.fromisoformat(str(r["at"])) for r in rows]
    out = []
    for i, row in enumerate(rows):
        gap = (times[i] - times[i - 1]).total_seconds() if i else None
        out.append({"text": redact(row["text"]), "seconds": gap})
    return json.dumps(out[-3:], sort_keys=True, separators=(",", ":"))


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --- export ----------------------------------------------------------------------------------------


def parse_date(value: str | dt.date) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def window(date: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(date, dt.time(), tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def table_key(table: str, date: dt.date) -> str:
    return f"{table}/date={date.isoformat()}/{PART}"


def manifest_key(date: dt.date) -> str:
    return f"{MANIFESTS}/{date.isoformat()}.json"


def open_datasets_store(uri: str | None = None) -> ArtifactStore:
    """The datasets store: DATASETS_URI (gs://bucket/datasets or a folder), default <state>/datasets."""
    if uri is None:
        from shared.config import get_settings

        uri = get_settings().datasets_store
    return open_store(uri)


def _table_bytes(spec: TableSpec, rows: Iterable[dict[str, Any]], pseudonym: Callable[[Any], Any]) -> bytes:
    transforms: dict[str | None, Callable[[Any], Any]] = {
        None: lambda v: v,
        "pseudonym": pseudonym,
        "redact": redact,
        "json": _json,
        "conversation": conversation_window,
    }
    columns: dict[str, list[Any]] = {c.name: [] for c in spec.columns}
    for row in rows:
        for c in spec.columns:
            columns[c.name].append(transforms[c.transform](row[c.name]))
    table = pa.table({c.name: pa.array(columns[c.name], type=c.type) for c in spec.columns}, schema=spec.schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, **PARQUET_OPTIONS)
    return sink.getvalue()


@dataclass
class ExportResult:
    date: dt.date
    manifest: dict[str, Any]
    written: bool  # False: the version existed and was left alone
    keys: list[str] = field(default_factory=list)


def export_dataset(
    engine: sa.Engine,
    store: ArtifactStore,
    date: str | dt.date,
    *,
    pseudonymiser: Pseudonymiser | None = None,
    force: bool = False,
    today: dt.date | None = None,
) -> ExportResult:
    """Write the dataset version of `date` (see the module docstring).

    Raises DatasetExistsError when the version exists and not `force`, and
    ExportRefusedError for a date that is not over yet (today or later, UTC).
    """
    date = parse_date(date)
    today = today or dt.datetime.now(dt.UTC).date()
    if date >= today:
        raise ExportRefusedError(f"{date.isoformat()} is not over yet (UTC); export a past date")
    existing = read_manifest(store, date, missing_ok=True)
    if existing is not None and not force:
        raise DatasetExistsError(date, existing)
    pseudonym = pseudonymiser or pseudonymiser_from_settings()
    start, end = window(date)

    files: dict[str, bytes] = {}
    # One snapshot for all tables, so the version is consistent across them.
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            for name, spec in TABLES.items():
                rows = conn.execute(sa.text(spec.sql()), {"start": start, "end": end}).mappings()
                files[name] = _table_bytes(spec, (dict(r) for r in rows), pseudonym)

    tables: dict[str, Any] = {}
    for name, data in files.items():
        key = table_key(name, date)
        store.write_bytes(key, data)
        spec = TABLES[name]
        tables[name] = {
            "path": key,
            "rows": pq.ParquetFile(io.BytesIO(data)).metadata.num_rows,
            "sha256": sha256_bytes(data),
            "bytes": len(data),
            "time_column": spec.time_column,
            "columns": [{"name": c.name, "type": str(c.type)} for c in spec.columns],
        }
    manifest = {
        "kind": "cognitive-core-dataset",
        "schema_version": SCHEMA_VERSION,
        "date": date.isoformat(),
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "tables": tables,
        "pseudonymisation": {"method": "hmac-sha256/32hex", "key_id": pseudonym.key_id},
        "writer": {"pyarrow": pa.__version__, "parquet": PARQUET_OPTIONS},
    }
    raw = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    try:
        store.write_bytes(manifest_key(date), raw, if_absent=not force)
    except KeyExistsError:
        # Another exporter committed this date first; its version stands.
        raise DatasetExistsError(date, read_manifest(store, date) or {}) from None
    return ExportResult(date, manifest, True, [*(t["path"] for t in tables.values()), manifest_key(date)])


# --- reading a version back ----------------------------------------------------------------------


def read_manifest(store: ArtifactStore, date: str | dt.date, *, missing_ok: bool = False) -> dict[str, Any] | None:
    """The manifest of the version of `date`; None (missing_ok) or DatasetNotFoundError if absent."""
    date = parse_date(date)
    try:
        return json.loads(store.read_bytes(manifest_key(date)))
    except FileNotFoundError:
        if missing_ok:
            return None
        raise DatasetNotFoundError(f"no dataset version for {date.isoformat()} in {store.uri}") from None


def list_dates(store: ArtifactStore) -> list[dt.date]:
    """Dates that have a complete dataset version (a manifest), oldest first."""
    dates = []
    for key in store.list(f"{MANIFESTS}/"):
        stem = key.rsplit("/", 1)[-1].removesuffix(".json")
        try:
            dates.append(dt.date.fromisoformat(stem))
        except ValueError:
            continue
    return sorted(dates)


@dataclass(frozen=True)
class DatasetVersion:
    """One date's tables, verified against its manifest."""

    date: dt.date
    manifest: dict[str, Any]
    tables: dict[str, pa.Table]

    def __getitem__(self, table: str) -> pa.Table:
        return self.tables[table]


def read_dataset(
    store: ArtifactStore | str,
    date: str | dt.date,
    tables: Iterable[str] | None = None,
    *,
    verify: bool = True,
) -> DatasetVersion:
    """Read the dataset version of one UTC date, for training jobs.

    Args:
        store: the datasets store (an ArtifactStore, or its URI: `gs://<bucket>/datasets`
            or a local folder; `open_datasets_store()` gives the configured one).
        date: the version, `datetime.date` or "YYYY-MM-DD" (rows whose event time falls
            in that UTC day; see `TABLES[...].time_column`).
        tables: a subset of "interactions", "labels", "feedback", "attempts",
            "generation_log"; default all of them.
        verify: check every file's sha256 against the manifest (default; keep it on).

    Returns:
        DatasetVersion with `.tables[name]` (a `pyarrow.Table` whose schema is
        `TABLES[name].schema`; `.to_pandas()` if you want a DataFrame), `.manifest` (row
        counts, schema_version, sha256 per file: record it, or its sha256, as the
        training run's data snapshot) and `.date`.

    Raises:
        DatasetNotFoundError: no version for that date (not exported, or not finished:
            the manifest is written last, so a half-written export is never read).
        CorruptDatasetError: a file is missing or does not match the manifest, or the
            manifest's schema_version is newer than this code understands.
        KeyError: an unknown table name.

    Identity columns are pseudonyms (`user_pseudonym`, `session_pseudonym`,
    `labeller_pseudonym`): stable across dates under one key (`manifest["pseudonymisation"]["key_id"]`),
    so a student's history can be joined across versions, but not mapped back to a uid.
    For several dates, call it per date and `pyarrow.concat_tables`, or use `read_dates`.
    """
    if isinstance(store, str):
        store = open_store(store)
    date = parse_date(date)
    manifest = read_manifest(store, date)
    assert manifest is not None
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise CorruptDatasetError(
            f"dataset {date} has schema_version {manifest['schema_version']}; this code reads <= {SCHEMA_VERSION}"
        )
    wanted = list(tables) if tables is not None else list(manifest["tables"])
    out: dict[str, pa.Table] = {}
    for name in wanted:
        entry = manifest["tables"][name]
        try:
            data = store.read_bytes(entry["path"])
        except FileNotFoundError as exc:
            raise CorruptDatasetError(f"dataset {date}: {entry['path']} is missing") from exc
        if verify and sha256_bytes(data) != entry["sha256"]:
            raise CorruptDatasetError(f"dataset {date}: {entry['path']} does not match its manifest")
        out[name] = pq.read_table(io.BytesIO(data))
    return DatasetVersion(date, manifest, out)


def read_dates(store: ArtifactStore | str, dates: Iterable[str | dt.date], table: str) -> pa.Table:
    """One table over several dates (each verified), concatenated in date order."""
    if isinstance(store, str):
        store = open_store(store)
    parts = [read_dataset(store, d, [table]).tables[table] for d in sorted(parse_date(d) for d in dates)]
    if not parts:
        return TABLES[table].schema.empty_table()
    return pa.concat_tables(parts)
