"""Issue 13: a deployment from an empty project must work end to end. These static
checks hold what `terraform validate` (which needs the provider) would not anyway:
one settings file for both deploy paths, one migrating identity, names within
Google's limits, the build account, the private pool, the audit flags, the data
the models need, the Hosting render, and a reason on every accepted checkov finding.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess

import hcl2
import pytest
import yaml

import tests.deploy.terraform_hcl as tt

REPO = tt.REPO
TF = tt.TF
MODULE = tt.MODULE


def cloudbuild(name: str = "cloudbuild.yaml") -> dict:
    return yaml.safe_load((REPO / name).read_text())


def step(config: dict, step_id: str) -> str:
    found = [s for s in config["steps"] if s.get("id") == step_id]
    assert found, f"no step {step_id}"
    return " ".join(found[0].get("args", [])) + "\n" + found[0].get("script", "")


def tfvars(env: str) -> dict:
    with (TF / "environments" / env / "environment.tfvars").open() as fh:
        parsed = hcl2.load(fh)
    return {
        k: [tt.unquote(x) for x in v] if isinstance(v, list) else tt.unquote(v)
        for k, v in parsed.items()
        if not k.startswith("__")
    }


# --- one configuration for the manual path and Cloud Build ---------------------------------


@pytest.mark.parametrize("env", tt.ENVIRONMENTS)
def test_environment_settings_are_committed_and_complete(env):
    root = TF / "environments" / env
    path = root / "environment.tfvars"
    assert path.is_file()
    # gcloud builds submit uploads what git does not ignore: the settings must not be ignored.
    # (Cloud Build's own checkout has no .git: then the ignore files are read directly.)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=REPO, check=False, capture_output=True)
    assert ignored.returncode != 0, f"{path} is git-ignored: Cloud Build would not see it"
    for ignore_file in (REPO / ".gitignore", TF / ".gitignore"):
        patterns = [p.strip() for p in ignore_file.read_text().splitlines() if p.strip() and not p.startswith("#")]
        assert not [p for p in patterns if fnmatch.fnmatch("environment.tfvars", p)], ignore_file
    assert not (root / "terraform.tfvars.example").exists(), "one settings file, not an example to copy"
    values = tfvars(env)
    root_vars = tt.blocks(root, "variable")
    assert set(values) <= set(root_vars), f"unknown variables: {set(values) - set(root_vars)}"
    required = {n for n, b in root_vars.items() if "default" not in b}
    assert required <= set(values), f"required but not set: {required - set(values)}"
    # Everything that used to revert to a default on a CI apply is in the file.
    carried = ("project_id", "region", "migrator_service_account", "db_iam_users", "cors_origins")
    carried += ("mounted_llm_secrets",)
    for name in carried:
        assert name in values, name
    assert values["migrator_service_account"] == f"cc-deployer@{values['project_id']}.iam.gserviceaccount.com"
    text = path.read_text()
    assert not re.search(r"(?i)(api_key|password|secret)\s*=", text), "no secret values in settings"


def test_cloudbuild_applies_the_committed_settings_and_nothing_else():
    config = cloudbuild()
    apply = step(config, "terraform-apply")
    assert "-var-file=environment.tfvars" in apply
    assert set(re.findall(r'-var "([a-z_]+)=', apply)) == {"function_source_dir", "training_image_uri"}
    assert "terraform.tfvars must not exist" in apply
    assert "${PROJECT_ID}" in apply and "environment.tfvars" in apply  # project check
    assert "-lockfile=readonly" in apply


def test_no_substitution_needs_a_comma():
    """`--substitutions A=x,B=y` splits on commas: no value may need one (the old
    `_LLM_SECRETS='["A","B"]'` broke with two entries). Lists live in environment.tfvars."""
    for name in ("cloudbuild.yaml", "cloudbuild.migrate.yaml"):
        subs = cloudbuild(name)["substitutions"]
        for key, value in subs.items():
            assert "," not in str(value) and "[" not in str(value), f"{name}: {key}={value!r}"
    assert "_LLM_SECRETS" not in cloudbuild()["substitutions"]
    assert "^|^" in (REPO / "scripts" / "cloud_migrate.sh").read_text()  # nested build: | separator


# --- one identity migrates -------------------------------------------------------------------


def test_builds_run_as_the_deployer_who_is_the_only_migrator():
    for name in ("cloudbuild.yaml", "cloudbuild.migrate.yaml"):
        assert "serviceAccount" in cloudbuild(name), name
    assert "${_DEPLOYER}@$PROJECT_ID.iam.gserviceaccount.com" in cloudbuild()["serviceAccount"]
    boot = tt.resources(TF / "bootstrap")
    assert "google_service_account.deployer" in boot
    roles = tt.load_dir(TF / "bootstrap")["locals"][0]["deployer_roles"]
    needed = ("cloudsql.instanceUser", "cloudfunctions.admin", "firebasehosting.admin", "monitoring.editor")
    for role in (f"roles/{r}" for r in needed):
        assert role in roles, role
    template = (MODULE / "templates" / "db_bootstrap.sql.tftpl").read_text()
    superuser = [line for line in template.splitlines() if "cloudsqlsuperuser" in line and line.startswith("GRANT")]
    assert superuser == ['GRANT cloudsqlsuperuser TO "${migrator}";']
    migrate = (REPO / "scripts" / "migrate.sh").read_text()
    assert "*.iam)" in migrate, "migrate.sh refuses a person's account"
    cm = (REPO / "scripts" / "cloud_migrate.sh").read_text()
    assert "cloudbuild.migrate.yaml" in cm and "--worker-pool" in cm
    assert "scripts/migrate.sh" in step(cloudbuild("cloudbuild.migrate.yaml"), "migrate")


def test_private_database_is_migrated_from_a_private_pool():
    res = tt.resources(MODULE)
    pool = res["google_cloudbuild_worker_pool.private"]
    assert pool["count"] == "${local.private_sql ? 1 : 0}"
    assert pool["network_config"][0]["peered_network"] == "${var.sql_private_network}"
    assert "migrate_worker_pool" in tt.blocks(MODULE, "output")
    for env in tt.ENVIRONMENTS:
        assert "migrate_worker_pool" in tt.blocks(TF / "environments" / env, "output")
    config = cloudbuild()
    assert "migrate_worker_pool" in step(config, "migrate") and "migrate_worker_pool" in step(config, "migrate-private")


def test_prod_database_has_no_public_ip_and_is_protected():
    # The module refuses prod without a VPC for the database or without deletion protection.
    variables = tt.blocks(MODULE, "variable")
    private = [v["condition"] for v in variables["sql_private_network"]["validation"]]
    assert any('var.environment != "prod" || var.sql_private_network != null' in c for c in private)
    protection = [v["condition"] for v in variables["deletion_protection"]["validation"]]
    assert any('var.environment != "prod" || var.deletion_protection' in c for c in protection)
    prod = TF / "environments" / "prod"
    assert tt.blocks(prod, "module")["cognitive_core"]["sql_private_network"] == "${var.sql_private_network}"
    assert tfvars("prod")["sql_private_network"].startswith("projects/")
    assert tfvars("prod")["deletion_protection"] is True and tfvars("dev")["deletion_protection"] is False


@pytest.mark.parametrize("env", tt.ENVIRONMENTS)
def test_each_environment_names_itself(env):
    assert tfvars(env)["environment"] == env
    config = cloudbuild()
    assert "^environment *= *" in step(config, "terraform-apply")  # Cloud Build checks it against _ENV


def test_functions_are_built_by_a_dedicated_account():
    res = tt.resources(MODULE)
    assert "google_service_account.build" in res
    roles = res["google_project_iam_member.build"]["for_each"]
    assert "roles/logging.logWriter" in roles and "roles/artifactregistry.writer" in roles
    assert tt.unquote(res["google_storage_bucket_iam_member.build_sources"]["role"]) == "roles/storage.objectViewer"
    for kind in ("http", "event"):
        build = res[f"google_cloudfunctions2_function.{kind}"]["build_config"][0]
        assert build["service_account"] == "${local.build_service_account}"
    assert "google_service_account.build" in tt.module_locals()["build_service_account"]


# --- names ---------------------------------------------------------------------------------


def test_bucket_and_account_names_fit_with_the_longest_inputs():
    """30-character project id, 16-character name_prefix: every derived name fits."""
    project, prefix = "p" * 30, "n" * 16
    loc = tt.module_locals()
    sources = tt.unquote(loc["sources_bucket"]).replace("${var.project_id}", project).replace("${local.prefix}", prefix)
    artifacts = tt.unquote(loc["artifacts_bucket"])
    artifacts = f"{project}-{prefix}-artifacts" if "artifacts" in artifacts else artifacts
    assert len(sources) <= 63, sources
    assert len(artifacts) <= 63, artifacts
    res = tt.resources(MODULE)
    assert res["google_storage_bucket.sources"]["name"] == "${local.sources_bucket}"
    for name in ("artifacts", "sources"):
        assert "precondition" in str(res[f"google_storage_bucket.{name}"]["lifecycle"]), name
    groups = [*loc["groups"], "build"]
    assert max(len(f"{prefix}-{g}") for g in groups) <= 30, "service account ids are at most 30 characters"
    variables = tt.blocks(MODULE, "variable")
    for name in ("project_id", "name_prefix", "artifacts_bucket_name"):
        assert "validation" in variables[name], name


# --- database audit flags and checkov ------------------------------------------------------


def test_postgres_logs_connections_locks_errors_and_audits_ddl():
    settings = tt.resources(MODULE)["google_sql_database_instance.main"]["settings"][0]
    flags = {tt.unquote(f["name"]): tt.unquote(f["value"]) for f in settings["database_flags"]}
    expected = {
        "log_checkpoints": "on",
        "log_connections": "on",
        "log_disconnections": "on",
        "log_lock_waits": "on",
        "log_temp_files": "0",
        "log_min_duration_statement": "-1",
        "log_min_messages": "error",
        "cloudsql.enable_pgaudit": "on",
    }
    assert expected.items() <= flags.items()
    assert "pgaudit.log" in flags
    assert "CREATE EXTENSION IF NOT EXISTS pgaudit" in (MODULE / "templates" / "db_bootstrap.sql.tftpl").read_text()


SKIP = re.compile(r"#\s*checkov:skip=([A-Z0-9_]+):(.*)")


def test_every_accepted_checkov_finding_says_why():
    found: dict[str, list[str]] = {}
    for path in TF.rglob("*.tf"):
        for check, reason in SKIP.findall(path.read_text()):
            assert len(reason.strip()) >= 30, f"{path.name}: {check} needs a real reason"
            found.setdefault(check, []).append(path.name)
    # The public invoker for the Hosting-called functions is the accepted one.
    assert "CKV_GCP_102" in found and "iam.tf" in found["CKV_GCP_102"]
    # Postgres logging and pgAudit are fixed, not skipped.
    for check in ("CKV_GCP_51", "CKV_GCP_52", "CKV_GCP_53", "CKV_GCP_54", "CKV_GCP_110"):
        assert check not in found, f"{check} must be fixed, not skipped"


# --- models need their data ------------------------------------------------------------------


def test_cloud_build_fetches_the_data_and_requires_the_models():
    config = cloudbuild()
    data = step(config, "data")
    assert "gcloud storage rsync" in data
    for need in ("semeval2013", "assistments2009", "clinc150"):
        assert need in data, need
    models = step(config, "publish-models")
    assert "SHARED_DATA_DIR" in models
    assert "--require grader,predictor" in models
    base_model = (REPO / "model_export" / "base_model.py").read_text()
    assert "SHARED_DATA_DIR" in base_model, "model_export reads the data folder from SHARED_DATA_DIR"


# --- Firebase Hosting -------------------------------------------------------------------------


def test_hosting_render_points_at_this_environment_and_streams_direct(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_hosting", REPO / "scripts" / "render_hosting.py")
    render_hosting = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_hosting)
    rewrites = [
        {"source": src, "function": {"functionId": f"cc-dev-{name}", "region": "europe-west1"}}
        for name in ("chat", "grading", "prediction", "feedback")
        for src in (f"/api/{name}", f"/api/{name}/**")
    ]
    path = render_hosting.render({"firebase_hosting_rewrites": {"value": rewrites}}, "my-dev", tmp_path, "AIzaKEY")
    hosting = json.loads(path.read_text())["hosting"]
    assert hosting["public"] == "public" and (tmp_path / "public" / "index.html").is_file()
    assert hosting["rewrites"][: len(rewrites)] == rewrites
    assert hosting["rewrites"][-1] == {"source": "**", "destination": "/index.html"}, "catch-all stays last"
    assert not any("cc-prod" in json.dumps(r) for r in hosting["rewrites"])
    web = json.loads((tmp_path / "public" / "config.json").read_text())
    # Hosting buffers rewritten responses: SSE goes to the function's own URL, which the CSP allows.
    assert web["streamUrl"] == "https://europe-west1-my-dev.cloudfunctions.net/cc-dev-chat"
    assert web["auth"]["apiKey"] == "AIzaKEY" and web["apiBase"] == "/api"
    headers = [h for rule in hosting["headers"] for h in rule["headers"]]
    csp = next(h["value"] for h in headers if h["key"] == "Content-Security-Policy")
    assert "https://*.cloudfunctions.net" in csp
    checked_in = json.loads((REPO / "web" / "config.json").read_text())
    assert checked_in["streamUrl"] != web["streamUrl"], "the repository's web/config.json is untouched"
    assert "render_hosting.py" in step(cloudbuild(), "hosting") and "--only hosting" in step(cloudbuild(), "hosting")


# --- the dry run ---------------------------------------------------------------------------


def test_cloud_build_configs_render_without_problems():
    import importlib.util

    spec = importlib.util.spec_from_file_location("render_cloudbuild", REPO / "scripts" / "render_cloudbuild.py")
    render_cloudbuild = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render_cloudbuild)
    for name in ("cloudbuild.yaml", "cloudbuild.migrate.yaml"):
        text, problems = render_cloudbuild.render(cloudbuild(name), {"_TF_STATE_BUCKET": "p-tfstate"})
        assert problems == [], f"{name}: {problems}"
        assert "# runs as projects/my-project/serviceAccounts/" in text
    _, problems = render_cloudbuild.render(cloudbuild(), {"_LLM": "A,B"})
    assert any("comma" in p for p in problems)


def test_deploy_check_runs_every_stage():
    script = (REPO / "scripts" / "deploy_check.sh").read_text()
    for stage in (
        "terraform fmt -check",
        "pytest -q -p no:cacheprovider tests/deploy",
        "checkov",
        "scripts/build_functions.py",
        "model_export/Dockerfile",
        "render_cloudbuild.py",
        "render_hosting.py",
        "terraform -chdir",
    ):
        assert stage in script, stage
    makefile = (REPO / "Makefile").read_text()
    assert "deploy-check:" in makefile and "scripts/deploy_check.sh" in makefile
