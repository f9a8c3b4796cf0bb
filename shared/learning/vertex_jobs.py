"""The training job on Google Cloud: one Vertex AI `CustomJob` per run.

The job is the same program as locally (`python -m model_export.retrain --run <id> ...`,
the arguments of `runs.job_args`), run from the training image (`model_export/Dockerfile`,
`TRAINING_IMAGE_URI`) as the training service account on `TRAINING_MACHINE_TYPE`. It
needs no database: it reads the dataset snapshot from `DATASETS_URI` and writes the
version and `runs/<id>/result.json` to `MODEL_STORE_URI` (both gs://).

How a run's status flows back: the job writes its own outcome (`result.json`, exactly as
locally); `reconcile` asks Vertex AI for the state of every running run's job and, once
the job has ended, records `result.json` with `runs.finish` (succeeded / rejected /
failed). A job that ended without a final result (it crashed, was cancelled, or hit
`TRAINING_TIMEOUT_S`) is recorded as failed with Vertex AI's error. `reconcile` runs on
every retrain message and on the nightly tick, and then starts the queued runs the ended
ones were blocking.

The client is the real `google-cloud-aiplatform` GAPIC client (`JobServiceClient`, REST
transport); `api_endpoint` points it at the region's endpoint, or a loopback stub in tests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from shared.learning.runs import FINAL, LaunchDeferred, LaunchFailed, dispatch, finish, job_args, read_result

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.aiplatform_v1 import CustomJob, JobServiceClient

log = logging.getLogger(__name__)

#: Vertex AI job states after which nothing more happens
ENDED_STATES = {"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED"}
#: the job's program, in the training image's interpreter
JOB_COMMAND = ["python", "-m", "model_export.retrain"]
#: a run marked running whose job name was never recorded (the launch died half-way) is
#: failed after this long, so it does not block its models forever
LAUNCH_GRACE_S = 15 * 60


@dataclass
class VertexLauncher:
    """Submits a run's training job as a Vertex AI CustomJob (see the module docstring)."""

    project: str
    region: str
    image_uri: str
    service_account: str
    machine_type: str
    store_uri: str
    datasets_uri: str
    staging_uri: str | None = None
    shared_data_uri: str | None = None
    timeout_s: int = 3 * 3600
    api_endpoint: str | None = None
    credentials: Credentials | None = None
    request_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self._client: JobServiceClient | None = None

    @property
    def parent(self) -> str:
        return f"projects/{self.project}/locations/{self.region}"

    def client(self) -> JobServiceClient:
        if self._client is None:
            from google.cloud.aiplatform_v1 import JobServiceClient

            endpoint = self.api_endpoint or f"{self.region}-aiplatform.googleapis.com"
            self._client = JobServiceClient(
                credentials=self.credentials, transport="rest", client_options={"api_endpoint": endpoint}
            )
        return self._client

    def custom_job(self, run_id: str, params: dict[str, Any]) -> CustomJob:
        """The CustomJob of one run: one replica of the training image on the configured machine."""
        from google.cloud import aiplatform_v1 as v1
        from google.protobuf.duration_pb2 import Duration

        env = {
            "COGNITIVE_ENV": "cloud",
            "GOOGLE_CLOUD_PROJECT": self.project,
            "MODEL_STORE_URI": self.store_uri,
            "DATASETS_URI": self.datasets_uri,
            "HF_HUB_OFFLINE": "1",
        }
        if self.shared_data_uri:  # Vertex AI mounts Cloud Storage at /gcs/<bucket>/...
            env["SHARED_DATA_DIR"] = gcs_mount_path(self.shared_data_uri)
        container = v1.ContainerSpec(
            image_uri=self.image_uri,
            command=JOB_COMMAND,
            args=job_args(run_id, params, self.store_uri, self.datasets_uri),
            env=[v1.EnvVar(name=k, value=v) for k, v in env.items()],
        )
        spec = v1.CustomJobSpec(
            worker_pool_specs=[
                v1.WorkerPoolSpec(
                    machine_spec=v1.MachineSpec(machine_type=self.machine_type),
                    replica_count=1,
                    container_spec=container,
                )
            ],
            service_account=self.service_account,
            scheduling=v1.Scheduling(timeout=Duration(seconds=self.timeout_s)),
        )
        if self.staging_uri:
            spec.base_output_directory = v1.GcsDestination(output_uri_prefix=self.staging_uri)
        return v1.CustomJob(
            display_name=f"retrain-{run_id}",
            job_spec=spec,
            labels={"app": "cognitive-core", "run_id": _label_value(run_id)},
        )

    def launch(self, run_id: str, params: dict[str, Any]) -> str | None:
        """Create the CustomJob; returns its resource name (recorded on the run)."""
        from google.api_core import exceptions as gexc

        try:
            job = self.client().create_custom_job(
                parent=self.parent, custom_job=self.custom_job(run_id, params), timeout=self.request_timeout_s
            )
        except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError, gexc.TooManyRequests) as exc:
            raise LaunchDeferred(f"Vertex AI did not accept the job now: {exc}") from exc
        except gexc.GoogleAPICallError as exc:  # invalid spec, no permission, unknown project: retrying won't help
            raise LaunchFailed(f"Vertex AI refused the job: {exc}") from exc
        log.info("training job submitted to Vertex AI", extra={"run_id": run_id, "job": job.name})
        return str(job.name)

    def job_state(self, name: str) -> tuple[str, str | None]:
        """(state name, error message) of a job."""
        job = self.client().get_custom_job(name=name, timeout=self.request_timeout_s)
        error = job.error.message if job.error and job.error.message else None
        return job.state.name, error


def gcs_mount_path(uri: str) -> str:
    """gs://bucket/path -> /gcs/bucket/path, where a Vertex AI job sees Cloud Storage."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    return "/gcs/" + uri.removeprefix("gs://").rstrip("/")


def _label_value(value: str) -> str:
    """Vertex AI label values: lowercase letters, digits, - and _, at most 63 characters."""
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in value.lower())
    return cleaned[:63]


def reconcile(engine: sa.Engine, launcher: VertexLauncher) -> dict[str, str]:
    """Record the outcome of every running run whose Vertex AI job has ended, then start
    the queued runs that were waiting for them. Returns {run id: recorded status}.

    A Vertex AI error while asking about one job leaves that run as it is (asked again
    next time); it does not stop the others.
    """
    from google.api_core import exceptions as gexc

    with engine.connect() as conn:
        running = conn.execute(
            sa.text(
                """SELECT id, external_job, started_at < now() - make_interval(secs => :grace) AS stale
                     FROM training_runs WHERE status = 'running' ORDER BY started_at"""
            ),
            {"grace": LAUNCH_GRACE_S},
        ).all()
    recorded: dict[str, str] = {}
    for row in running:
        run_id = str(row.id)
        if not row.external_job:
            if row.stale:  # the launch died between 'running' and recording the job
                with engine.begin() as conn:
                    recorded[run_id] = finish(
                        conn, run_id, {"status": "failed", "error": "the job was never submitted (launch interrupted)"}
                    )
            continue
        try:
            state, error = launcher.job_state(row.external_job)
        except gexc.GoogleAPICallError as exc:
            log.warning("cannot read the training job's state", extra={"run_id": run_id, "reason": str(exc)})
            continue
        if state not in ENDED_STATES:
            continue
        result = read_result(launcher.store_uri, run_id) or {}
        if result.get("status") not in FINAL:
            why = error or f"the job ended as {state} without a result"
            result = result | {"status": "failed", "error": result.get("error") or f"Vertex AI job {state}: {why}"}
        with engine.begin() as conn:
            recorded[run_id] = finish(conn, run_id, result)
        log.info("training job ended", extra={"run_id": run_id, "job": row.external_job, "state": state})
    dispatch(engine, launcher)
    return recorded
