"""Which launcher runs a training job: a local subprocess or a Vertex AI CustomJob.

- `TRAINING_IMAGE_URI` set, or running in the cloud: Vertex AI (`vertex_jobs.VertexLauncher`).
  Fail closed: in the cloud a missing setting (the image, the service account, a gs://
  model store and datasets store, a real project) raises `LauncherNotConfigured`
  naming every missing one; the job is never run as a subprocess of a function instance.
- otherwise (local development): `runs.LocalLauncher`, a subprocess of `TRAINING_PYTHON`.

`python -m shared.learning.launchers reconcile` records the outcome of ended Vertex AI
jobs by hand (the retrain function and the nightly tick do it on their own).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import ClassVar

import sqlalchemy as sa

from shared.config import Settings, get_settings
from shared.errors import DomainError, Kind
from shared.learning.runs import Launcher, LocalLauncher
from shared.learning.vertex_jobs import VertexLauncher, reconcile


class LauncherNotConfigured(DomainError):
    """The cloud has no complete Vertex AI configuration: refuse rather than run locally."""

    kind: ClassVar[Kind] = "unavailable"
    code: ClassVar[str] = "training_not_configured"

    def __init__(self, missing: list[str]) -> None:
        super().__init__("the training job cannot be launched on Vertex AI; missing or invalid: " + "; ".join(missing))
        self.missing = missing


def vertex_problems(settings: Settings) -> list[str]:
    """What keeps a Vertex AI launch from working (empty: ready)."""
    problems = []
    if not settings.training_image_uri:
        problems.append("TRAINING_IMAGE_URI (the model_export/ training image)")
    if not settings.training_service_account:
        problems.append("TRAINING_SERVICE_ACCOUNT (the identity the job runs as)")
    if not settings.model_store.startswith("gs://"):
        problems.append("MODEL_STORE_URI must be gs:// (the job runs elsewhere)")
    if not (settings.datasets_uri or "").startswith("gs://"):
        problems.append("DATASETS_URI must be gs:// (the job reads the snapshots from it)")
    if settings.training_shared_data_uri and not settings.training_shared_data_uri.startswith("gs://"):
        problems.append("TRAINING_SHARED_DATA_URI must be gs:// (read through the job's Cloud Storage mount)")
    if not settings.gcp_project or settings.gcp_project.startswith("demo-"):
        problems.append("GOOGLE_CLOUD_PROJECT (a real project, not the local demo one)")
    return problems


def uses_vertex(settings: Settings) -> bool:
    return bool(settings.training_image_uri) or settings.in_cloud


def choose_launcher(engine: sa.Engine, settings: Settings | None = None) -> Launcher:
    """The launcher the settings ask for (see the module docstring)."""
    settings = settings or get_settings()
    if uses_vertex(settings):
        problems = vertex_problems(settings)
        if problems:
            raise LauncherNotConfigured(problems)
        return VertexLauncher(
            project=settings.gcp_project,
            region=settings.gcp_region,
            image_uri=str(settings.training_image_uri),
            service_account=str(settings.training_service_account),
            machine_type=settings.training_machine_type,
            store_uri=settings.model_store,
            datasets_uri=str(settings.datasets_uri),
            staging_uri=settings.training_staging_uri,
            shared_data_uri=settings.training_shared_data_uri,
            timeout_s=settings.training_timeout_s,
            api_endpoint=settings.vertex_api_endpoint,
        )
    return LocalLauncher(
        engine=engine,
        python=settings.training_python,
        store_uri=settings.model_store,
        datasets_uri=settings.datasets_store,
        log_dir=settings.state_dir / "runs",
    )


def reconcile_runs(engine: sa.Engine, launcher: Launcher) -> dict[str, str]:
    """Record ended Vertex AI jobs (a local launcher's watcher threads do it themselves)."""
    if isinstance(launcher, VertexLauncher):
        return reconcile(engine, launcher)
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.learning.launchers", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["reconcile"])
    parser.parse_args(argv)
    from shared.db import get_engine

    engine = get_engine()
    print(json.dumps(reconcile_runs(engine, choose_launcher(engine)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
