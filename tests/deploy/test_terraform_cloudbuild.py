"""cloudbuild.yaml runs test, build, apply, models, migrations and Hosting in order, and
docs/deploy.md covers what a deploy does.
"""

from __future__ import annotations

import yaml

from tests.deploy.terraform_hcl import (
    REPO,
    TF,
    function_decorators,
)


def test_cloudbuild_runs_tests_build_deploy_and_migrations():
    config = yaml.safe_load((REPO / "cloudbuild.yaml").read_text())
    subs = config["substitutions"]
    assert {"_ENV", "_REGION", "_TF_STATE_BUCKET"} <= set(subs)
    assert (TF / "environments" / subs["_ENV"]).is_dir()
    steps = [
        " ".join(str(a) for a in step.get("args", [])) + "\n" + str(step.get("script", "")) for step in config["steps"]
    ]
    script = "\n".join(steps)

    def first_step(marker: str) -> int:
        found = [i for i, text in enumerate(steps) if marker in text]
        assert found, f"no step runs {marker!r}"
        return found[0]

    markers = ("make test", "make build", " apply ", "model_export build", "scripts/cloud_migrate.sh", "render_hosting")
    order = [first_step(m) for m in markers]
    assert order == sorted(order), "test, build, apply, models, migrate, hosting must run in that order"
    assert "MODEL_STORE_URI" in script and "model_export" in script
    # The migrations (and their runtime grants) run through one script, as the deployer.
    migrate = (REPO / "scripts" / "migrate.sh").read_text()
    assert "shared.db.migrate upgrade" in migrate and "db_runtime_grants.sql" in migrate


def test_deploy_doc_covers_every_http_function_rewrite():
    doc = (REPO / "docs" / "deploy.md").read_text()
    for name, kind in function_decorators().items():
        if kind == "http":
            assert f"/api/{name}/**" in doc, name
    for step in ("terraform apply", "gcloud secrets versions add", "shared.db.migrate upgrade", "current.json"):
        assert step in doc, step
