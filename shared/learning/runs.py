"""Training runs: created idempotently from retrain requests, run one at a time per model.

Pub/Sub delivers at least once, so the message id is the run's idempotency
key: a redelivered message finds its run and changes nothing.

Status: queued -> running (started_at) -> succeeded / rejected / failed (finished_at).
A run starts only when no running run trains one of its models (`try_start`); the
job (`model_export.retrain`, in the training venv) writes its result to the model
store, and `finish` copies it into `training_runs` and `model_versions`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from shared.logs import log_event

log = logging.getLogger(__name__)

TRIGGERS = {"labels", "tasks", "schedule", "manual"}
#: a scheduler tick that only records ended jobs and starts waiting runs (no run of its own)
RECONCILE = "reconcile"


class BadRetrainMessage(ValueError):
    """The message cannot be a retrain request; retrying it will not help."""


@dataclass(frozen=True)
class RetrainMessage:
    """One delivery of a `retrain-requests` message. `message_id` is the run's idempotency
    key: the outbox row's id (attribute `request_id`) when the message carries one, so a
    request the outbox republished after a lost acknowledgement (a new Pub/Sub messageId)
    is still one run; else Pub/Sub's messageId (a message published by hand)."""

    message_id: str
    trigger: str
    params: dict[str, Any]


def parse_pubsub_event(data: dict[str, Any]) -> RetrainMessage:
    """Decode the CloudEvent data of a Pub/Sub push (`{"message": {...}}`)."""
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, dict) or not message.get("messageId"):
        raise BadRetrainMessage("event carries no Pub/Sub message with a messageId")
    body: dict[str, Any] = {}
    if message.get("data"):
        try:
            body = json.loads(base64.b64decode(message["data"], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadRetrainMessage(f"message data is not base64 JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise BadRetrainMessage("message data must be a JSON object")
    trigger = body.get("trigger") or (message.get("attributes") or {}).get("trigger") or "manual"
    if trigger not in TRIGGERS | {RECONCILE}:
        raise BadRetrainMessage(f"unknown trigger {trigger!r}; expected one of {sorted(TRIGGERS | {RECONCILE})}")
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRetrainMessage("params must be a JSON object")
    request_id = (message.get("attributes") or {}).get("request_id")
    key = f"retrain-request:{request_id}" if request_id else str(message["messageId"])
    return RetrainMessage(key, trigger, params)


def accept(conn: sa.Connection, request: RetrainMessage) -> tuple[uuid.UUID, bool]:
    """Record the run; returns (run id, whether this delivery created it)."""
    run_id = conn.execute(
        sa.text(
            """INSERT INTO training_runs (idempotency_key, trigger, params)
               VALUES (:key, :trigger, CAST(:params AS jsonb))
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING id"""
        ),
        {"key": request.message_id, "trigger": request.trigger, "params": json.dumps(request.params)},
    ).scalar()
    if run_id is not None:
        return run_id, True
    existing = conn.execute(
        sa.text("SELECT id FROM training_runs WHERE idempotency_key = :key"),
        {"key": request.message_id},
    ).scalar_one()
    return existing, False


# --- running a run: one job at a time per model ------------------------------------------

#: what a run trains when its request names nothing
DEFAULT_MODELS = ("intent", "predictor", "confusion")
FINAL = {"succeeded", "rejected", "failed"}
#: serialises "is a run of this model running?" checks across function instances
_LOCK_KEY = 0x7472_6169_6E  # "train"


def run_models(params: dict[str, Any]) -> list[str]:
    models = params.get("models") or list(DEFAULT_MODELS)
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    return sorted(set(models))


def try_start(conn: sa.Connection, run_id: uuid.UUID | str) -> dict[str, Any] | None:
    """queued -> running (with started_at) unless a running run shares one of its models.

    Returns the run's params when it was started, None when it stays as it is. Callers
    run it in a transaction; the advisory lock makes the check-then-update atomic
    across concurrent function instances.
    """
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    row = conn.execute(
        sa.text("SELECT status, params FROM training_runs WHERE id = :id FOR UPDATE"), {"id": str(run_id)}
    ).one_or_none()
    if row is None or row.status != "queued":
        return None
    models = set(run_models(row.params))
    busy = conn.execute(
        sa.text("SELECT id, params FROM training_runs WHERE status = 'running' AND id <> :id"), {"id": str(run_id)}
    ).all()
    if any(models & set(run_models(other.params)) for other in busy):
        return None
    conn.execute(
        sa.text("UPDATE training_runs SET status = 'running', started_at = now() WHERE id = :id"), {"id": str(run_id)}
    )
    return dict(row.params)


def queued_runs(conn: sa.Connection) -> list[uuid.UUID]:
    return list(
        conn.execute(sa.text("SELECT id FROM training_runs WHERE status = 'queued' ORDER BY created_at")).scalars()
    )


def finish(conn: sa.Connection, run_id: uuid.UUID | str, result: dict[str, Any]) -> str:
    """Record a job's result (the job's `runs/<id>/result.json`) on its running run;
    a published version also goes into model_versions. Returns the final status."""
    status = str(result["status"]) if result.get("status") in FINAL else "failed"
    version = result.get("version") if status == "succeeded" else None
    if version:
        record_version(conn, result.get("manifest") or {"version": version})
    conn.execute(
        sa.text(
            """UPDATE training_runs SET status = :status, finished_at = now(),
                   data_snapshot = CAST(:snapshot AS jsonb), metrics = CAST(:metrics AS jsonb),
                   gate = CAST(:gate AS jsonb), produced_version = :version, error = :error
               WHERE id = :id AND status = 'running'"""
        ),
        {
            "id": str(run_id),
            "status": status,
            "snapshot": json.dumps(result.get("snapshot")),
            "metrics": json.dumps(result.get("metrics") or {}),
            "gate": json.dumps(
                {"gates": result.get("gates") or {}, "reasons": result.get("reasons") or []}
                | {k: result.get(k) for k in ("parent", "skipped", "timings")}
            ),
            "version": version,
            "error": result.get("error") or (None if status != "failed" else "the job ended without a result"),
        },
    )
    outcome = {"succeeded": "published"}.get(status, status)
    reasons = result.get("reasons") or []
    log_event(
        log,
        "retrain_run",
        logging.INFO if outcome == "published" else logging.WARNING,
        run_id=str(run_id),
        outcome=outcome,
        model_version=version,
        reason="; ".join(map(str, reasons))[:300] or result.get("error"),
    )
    return status


def record_version(conn: sa.Connection, manifest: dict[str, Any]) -> None:
    """The version in service now: a row per version, the parent's row if it predates
    the learning loop (published by `model_export build`), the old current retired to
    'published'."""
    version, parent = manifest["version"], manifest.get("parent")
    if parent:
        conn.execute(
            sa.text(
                """INSERT INTO model_versions (version, status, manifest)
                   VALUES (:v, 'published', CAST(:m AS jsonb)) ON CONFLICT (version) DO NOTHING"""
            ),
            {"v": parent, "m": json.dumps({"version": parent, "note": "published before the learning loop"})},
        )
    conn.execute(sa.text("UPDATE model_versions SET status = 'published' WHERE status = 'current'"))
    metrics = {
        name: entry.get("gate") or entry.get("metrics") for name, entry in (manifest.get("models") or {}).items()
    }
    conn.execute(
        sa.text(
            """INSERT INTO model_versions (version, parent_version, status, manifest, metrics, activated_at)
               VALUES (:v, :p, 'current', CAST(:m AS jsonb), CAST(:metrics AS jsonb), now())
               ON CONFLICT (version) DO UPDATE SET status = 'current', activated_at = now()"""
        ),
        {"v": version, "p": parent, "m": json.dumps(manifest), "metrics": json.dumps(metrics)},
    )


class LaunchFailed(RuntimeError):
    """The job could not be started and retrying will not help: the run fails, visibly."""


class LaunchDeferred(RuntimeError):
    """The job could not be started for now (the API is unavailable): the run goes back to
    queued and the caller should let the message be redelivered."""


class Launcher(Protocol):
    """Starts the training job of a run that `try_start` moved to running."""

    def launch(self, run_id: str, params: dict[str, Any]) -> str | None:
        """Start the job; returns the external job's name to record on the run (None:
        nothing to record). Raises OSError / LaunchFailed (the run fails) or
        LaunchDeferred (the run is queued again)."""
        ...


def job_args(run_id: str, params: dict[str, Any], store_uri: str, datasets_uri: str | None) -> list[str]:
    """The arguments of `python -m model_export.retrain` for a run: one definition for the
    local subprocess and the Vertex AI job."""
    args = ["--run", run_id, "--models", ",".join(run_models(params)), "--store", store_uri]
    if datasets_uri:
        args += ["--datasets", datasets_uri]
    if params.get("date"):
        args += ["--date", str(params["date"])]
    if params.get("quick"):
        args.append("--quick")
    if params.get("prior") is False:
        args.append("--no-prior")
    if params.get("silver_weight") is not None:
        args += ["--silver-weight", str(float(params["silver_weight"]))]
    return args


class LocalLauncher:
    """Runs the training job as a subprocess of the training venv:

        <TRAINING_PYTHON> -m model_export.retrain --run <id> --models ... --store ... --datasets ...

    and, when it exits, records its result (read from the model store) on the run and
    starts the next queued run. The job itself needs no database: the store is the
    hand-over, which is what a Vertex AI job would use as well.
    """

    def __init__(
        self,
        *,
        engine: sa.Engine,
        python: str | Path,
        store_uri: str,
        datasets_uri: str | None,
        log_dir: Path,
        cwd: Path | None = None,
        job_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        #: job options this launcher always applies over a request's (demos and the
        #: end-to-end test: {"quick": True, "prior": False}, a training run of seconds)
        self.job_overrides = dict(job_overrides or {})
        self.python = str(python)
        self.store_uri = store_uri
        self.datasets_uri = datasets_uri
        self.log_dir = Path(log_dir)
        self.cwd = cwd or Path(__file__).resolve().parents[2]
        self.watchers: dict[str, threading.Thread] = {}
        self.processes: dict[str, subprocess.Popen] = {}

    def command(self, run_id: str, params: dict[str, Any]) -> list[str]:
        params = params | self.job_overrides
        return [self.python, "-m", "model_export.retrain", *job_args(run_id, params, self.store_uri, self.datasets_uri)]

    def launch(self, run_id: str, params: dict[str, Any]) -> str | None:
        """Start the job and its watcher; returns at once (nothing external to record)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with (self.log_dir / f"{run_id}.log").open("ab") as out:
            process = subprocess.Popen(
                self.command(run_id, params),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a function instance's signals do not reach the job
                env=os.environ | {"PYTHONPATH": str(self.cwd), "HF_HUB_OFFLINE": "1"},
            )
        watcher = threading.Thread(target=self._watch, args=(run_id, process), name=f"run-{run_id}", daemon=True)
        self.watchers[run_id] = watcher
        self.processes[run_id] = process
        watcher.start()
        log.info("training job started", extra={"run_id": run_id, "pid": process.pid})
        return None

    def _watch(self, run_id: str, process: subprocess.Popen) -> None:
        code = process.wait()
        result = read_result(self.store_uri, run_id) or {}
        if result.get("status") not in FINAL:
            result = result | {"status": "failed", "error": result.get("error") or f"the job exited with {code}"}
        with self.engine.begin() as conn:
            status = finish(conn, run_id, result)
        log.info("training job ended", extra={"run_id": run_id, "status": status, "exit_code": code})
        dispatch(self.engine, self)


def read_result(store_uri: str, run_id: str) -> dict[str, Any] | None:
    from shared.artifacts.store import open_store

    try:
        return json.loads(open_store(store_uri).read_bytes(f"runs/{run_id}/result.json"))
    except FileNotFoundError:
        return None


def dispatch(engine: sa.Engine, launcher: Launcher) -> list[str]:
    """Start every queued run whose models are free, oldest first; returns their ids.

    A run whose launch is deferred (LaunchDeferred: the API is down) is put back to
    queued and the error is raised after the other runs were tried, so the caller's
    message is redelivered and tries again."""
    started: list[str] = []
    deferred: LaunchDeferred | None = None
    for run_id in _queued(engine):
        with engine.begin() as conn:
            params = try_start(conn, run_id)
        if params is None:
            continue
        try:
            external = launcher.launch(str(run_id), params)
        except LaunchDeferred as exc:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "UPDATE training_runs SET status = 'queued', started_at = NULL "
                        "WHERE id = :id AND status = 'running'"
                    ),
                    {"id": str(run_id)},
                )
            log.warning("training job not started, the run waits", extra={"run_id": str(run_id), "reason": str(exc)})
            deferred = exc
            continue
        except (OSError, LaunchFailed) as exc:  # no training venv here, a refused job: the run fails, visibly
            with engine.begin() as conn:
                finish(conn, run_id, {"status": "failed", "error": f"could not start the job: {exc}"})
            continue
        if external:
            with engine.begin() as conn:
                conn.execute(
                    sa.text("UPDATE training_runs SET external_job = :job WHERE id = :id"),
                    {"id": str(run_id), "job": external},
                )
        started.append(str(run_id))
    if deferred is not None:
        raise deferred
    return started


def _queued(engine: sa.Engine) -> list[uuid.UUID]:
    with engine.connect() as conn:
        return queued_runs(conn)
