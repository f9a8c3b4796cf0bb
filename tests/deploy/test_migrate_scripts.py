"""scripts/migrate.sh and scripts/cloud_migrate.sh, run for real with a stand-in gcloud:
migrations go to the deployer's build (on the private pool when the database has no
public address), and a person's account is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def outputs(tmp_path: Path, pool: str) -> Path:
    values = {
        "sql_connection_name": "my-proj:europe-west1:cc-prod-pg",
        "artifacts_bucket": "my-proj-cc-prod-artifacts",
        "migrate_worker_pool": pool,
        "migrator_db_user": "cc-deployer@my-proj.iam",
        "db_name": "cognitive",
        "model_store_uri": "gs://my-proj-cc-prod-artifacts/models",
    }
    path = tmp_path / "tf-outputs.json"
    path.write_text(json.dumps({k: {"value": v} for k, v in values.items()}))
    return path


def fake_gcloud(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "gcloud.args"
    script = bin_dir / "gcloud"
    script.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {log}\n')
    script.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "BUILD_ID"}
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    return env


def test_private_database_migrates_in_a_nested_build_on_the_pool(tmp_path):
    env = fake_gcloud(tmp_path)
    pool = "projects/my-proj/locations/europe-west1/workerPools/cc-prod-pool"
    env["CONTENT_NODES_URI"] = "gs://my-proj-cc-prod-artifacts/content/nodes.json"
    proc = subprocess.run(
        ["bash", "scripts/cloud_migrate.sh", "prod", "--content", "--outputs", str(outputs(tmp_path, pool))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "gcloud.args").read_text().splitlines()
    assert args[:2] == ["builds", "submit"]
    assert args[args.index("--worker-pool") + 1] == pool
    assert args[args.index("--region") + 1] == "europe-west1"
    assert args[args.index("--config") + 1] == "cloudbuild.migrate.yaml"
    subs = args[args.index("--substitutions") + 1]
    assert subs.startswith("^|^")
    values = dict(part.split("=", 1) for part in subs[3:].split("|"))
    assert values["_DB_USER"] == "cc-deployer@my-proj.iam"
    assert values["_DEPLOYER"] == "cc-deployer@my-proj.gserviceaccount.com"
    assert values["_DB_IP_TYPE"] == "private" and values["_CONTENT"] == "true"
    assert values["_COURSE_URI"] == "gs://my-proj-cc-prod-artifacts/content/course.json"
    assert values["_NODES_URI"].endswith("/content/nodes.json")
    migrate_build = (REPO / "cloudbuild.migrate.yaml").read_text()
    assert set(values) <= set(yaml.safe_load(migrate_build)["substitutions"])


def test_public_database_from_a_laptop_still_goes_through_the_deployer_build(tmp_path):
    env = fake_gcloud(tmp_path)
    proc = subprocess.run(
        ["bash", "scripts/cloud_migrate.sh", "dev", "--outputs", str(outputs(tmp_path, ""))],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "gcloud.args").read_text().splitlines()
    assert "--worker-pool" not in args and "cloudbuild.migrate.yaml" in args
    assert "_DB_IP_TYPE=public" in args[args.index("--substitutions") + 1]


def test_migrate_refuses_a_persons_account():
    env = {
        **os.environ,
        "CLOUD_SQL_INSTANCE": "p:r:i",
        "DB_NAME": "cognitive",
        "DB_USER": "you@example.com",
        "GOOGLE_CLOUD_PROJECT": "p",
    }
    proc = subprocess.run(["bash", "scripts/migrate.sh"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "migrations run as the deployer only" in proc.stderr
