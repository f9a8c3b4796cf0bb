"""Static checks of terraform/ and cloudbuild.yaml.

`terraform init`/`validate` need the provider from the registry, which this machine
cannot reach, so these tests check what validate would not anyway: that the
infrastructure matches the code. Every function has a resource with the right trigger,
every environment variable set is one shared/config.py reads (a typo would silently
leave a local default in the cloud), the auth emulator is off, no secret value lives in
the configuration, and every var./local./resource reference resolves (the part of
`validate` we can do without the provider schema).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2", reason="python-hcl2 is not installed (requirements-dev.txt pins it)")

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "terraform"
MODULE = TF / "modules" / "cognitive_core"
ENVIRONMENTS = ("dev", "prod")

#: Environment variables the functions read that are not fields of Settings.
NON_SETTINGS_ENV = {"ONNX_THREADS"}  # shared/models/onnx_model.py THREADS_ENV

REF = re.compile(
    r"\b(?:(var|local|module)\.([a-z0-9_]+)"
    r"|(data\.[a-z0-9_]+\.[a-z0-9_]+)"
    r"|((?:google_[a-z0-9_]+|terraform_data)\.[a-z0-9_]+))"
)


# --- parsing --------------------------------------------------------------------------


@cache
def load_dir(folder: Path) -> dict[str, list[Any]]:
    """All .tf files of one Terraform module, merged by top-level block type."""
    merged: dict[str, list[Any]] = {}
    for path in sorted(folder.glob("*.tf")):
        with path.open() as fh:
            for key, blocks in hcl2.load(fh).items():
                if key != "__comments__":
                    merged.setdefault(key, []).extend(blocks)
    return merged


def unquote(value: Any) -> Any:
    """python-hcl2 keeps string literals quoted; expressions come as "${...}"."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def labels(key: str) -> str:
    return unquote(key)


def blocks(folder: Path, kind: str) -> dict[str, dict[str, Any]]:
    """`variable`/`output`/`module` blocks by name."""
    out: dict[str, dict[str, Any]] = {}
    for block in load_dir(folder).get(kind, []):
        for name, body in block.items():
            out[labels(name)] = body
    return out


def resources(folder: Path, kind: str = "resource") -> dict[str, dict[str, Any]]:
    """`resource`/`data` blocks keyed "type.name"."""
    out: dict[str, dict[str, Any]] = {}
    for block in load_dir(folder).get(kind, []):
        for rtype, named in block.items():
            for rname, body in named.items():
                out[f"{labels(rtype)}.{labels(rname)}"] = body
    return out


def module_locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in load_dir(MODULE).get("locals", []):
        merged.update({k: v for k, v in block.items() if not k.startswith("__")})
    return merged


def strings(node: Any) -> list[str]:
    """Every string value in a parsed tree (expressions included, comments excluded)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() if k != "__comments__" for s in strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return []


def default_of(variable: dict[str, Any]) -> Any:
    value = variable.get("default")
    if isinstance(value, list):
        return [unquote(v) for v in value]
    return unquote(value)


@cache
def settings_aliases() -> set[str]:
    from shared.config import Settings

    return {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}


def function_decorators() -> dict[str, str]:
    """functions/<name>/main.py -> "http" or "event", from the functions_framework
    decorator on the entry point named like the folder (what Terraform deploys)."""
    kinds = {}
    for main in sorted((REPO / "functions").glob("*/main.py")):
        name = main.parent.name
        match = re.search(rf"@functions_framework\.(http|cloud_event)\s*\ndef {name}\(", main.read_text())
        assert match, f"{main}: no functions_framework entry point named {name!r}"
        kinds[name] = "http" if match.group(1) == "http" else "event"
    return kinds


# --- the tests ----------------------------------------------------------------------------


def test_terraform_fmt_is_clean():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform binary not installed")
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


def test_every_function_is_deployed_with_its_trigger_kind():
    declared = {name: {k: unquote(v) for k, v in spec.items()} for name, spec in module_locals()["functions"].items()}
    assert {n: spec["kind"] for n, spec in declared.items()} == function_decorators()
    groups = module_locals()["groups"]
    assert {spec["group"] for spec in declared.values()} <= set(groups)

    res = resources(MODULE)
    http, event = res["google_cloudfunctions2_function.http"], res["google_cloudfunctions2_function.event"]
    assert http["for_each"] == "${local.http_functions}" and event["for_each"] == "${local.event_functions}"
    for fn in (http, event):
        assert fn["build_config"][0]["entry_point"] == "${each.key}"
        assert fn["service_config"][0]["environment_variables"] == "${local.function_env[each.key]}"
        assert "source[each.key]" in fn["build_config"][0]["source"][0]["storage_source"][0]["object"]
    trigger = event["event_trigger"][0]
    assert unquote(trigger["event_type"]) == "google.cloud.pubsub.topic.v1.messagePublished"
    assert trigger["pubsub_topic"] == "${local.event_topics[each.key]}"
    topics = module_locals()["event_topics"]
    assert set(topics) == {n for n, spec in declared.items() if spec["kind"] == "event"}
    assert topics["retrain"] == "${google_pubsub_topic.retrain_requests.id}"
    assert topics["nightly"] == "${google_pubsub_topic.learning_nightly.id}"
    assert unquote(trigger["retry_policy"]) == "RETRY_POLICY_RETRY"


def test_function_sizing_defaults_match_the_design():
    defaults = blocks(MODULE, "variable")["function_defaults"]["type"]
    # python-hcl2 renders the object type as one expression string.
    assert 'optional(string, "1Gi")' in defaults  # memory
    for field in ("min_instances", "max_instances", "concurrency", "timeout_seconds"):
        assert field in defaults
    sizing = module_locals()["sizing"]
    for field in ("var.function_overrides", "local.builtin_sizing", "var.function_defaults"):
        assert field in sizing


def test_function_environment_is_what_shared_config_reads():
    loc = module_locals()
    env: dict[str, Any] = {}
    assert loc["common_env"] == "${merge(var.extra_env, local.cloud_env)}"  # ours win over extra_env
    for part in ("cloud_env", "training_env"):
        env.update({k: unquote(v) for k, v in loc[part].items() if not k.startswith("__")})
    per_function = loc["function_env"]
    for name in ("DB_USER", "ONNX_THREADS"):
        assert re.search(rf"\b{name}\b", per_function)
        env[name] = "<per function>"

    required = {
        "COGNITIVE_ENV",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_REGION",
        "CLOUD_SQL_INSTANCE",
        "DB_USER",
        "DB_NAME",
        "DB_IAM_AUTH",
        "FIREBASE_AUTH_EMULATOR_HOST",
        "CORS_ORIGINS",
        "MODEL_STORE_URI",
        "STATE_DIR",
        "RETRAIN_TOPIC",
    }
    assert required <= set(env), f"missing: {sorted(required - set(env))}"
    unknown = set(env) - settings_aliases() - NON_SETTINGS_ENV
    assert not unknown, f"set in Terraform but read by nothing in shared/config.py: {sorted(unknown)}"
    onnx_model = (REPO / "shared/models/onnx_model.py").read_text()
    assert re.search(r'THREADS_ENV = "ONNX_THREADS"', onnx_model)

    # The literal values, read by the real settings class: cloud mode, IAM database
    # auth, and real Firebase token verification (an empty emulator host, explicit even
    # though unset means the same since emulator mode became an opt-in).
    assert env["FIREBASE_AUTH_EMULATOR_HOST"] == ""
    assert env["MODEL_STORE_URI"] == "${local.model_store_uri}"
    assert unquote(loc["model_store_uri"]) == "gs://${local.artifacts_bucket}/models"
    from shared.config import Settings

    literal = {k: v for k, v in env.items() if isinstance(v, str) and "${" not in v and k in settings_aliases()}
    settings = Settings.model_validate({**literal, "COGNITIVE_ENV_FILE": "/nonexistent"})
    assert settings.environment == "cloud"
    assert settings.db_iam_auth is True
    assert settings.auth_emulator_host is None


def test_llm_keys_are_secrets_never_plain_environment():
    from pydantic import SecretStr

    from shared.config import Settings

    secret_fields = {
        f.validation_alias
        for f in Settings.model_fields.values()
        if SecretStr in getattr(f.annotation, "__args__", (f.annotation,))
    }
    secret_fields.discard("DB_PASSWORD")  # IAM database auth: no password in the cloud
    # The dataset pseudonymisation key is its own secret, mounted into the nightly function only.
    secret_fields.discard("DATASET_PSEUDONYM_KEY")
    res = resources(MODULE)
    assert "google_secret_manager_secret.dataset_pseudonym_key" in res
    event = res["google_cloudfunctions2_function.event"]["service_config"][0]
    dataset_env = event["dynamic"][0]['"secret_environment_variables"']
    assert 'each.key == "nightly"' in dataset_env["for_each"] and "DATASET_PSEUDONYM_KEY" in dataset_env["for_each"]
    accessor = res["google_secret_manager_secret_iam_member.dataset_key_accessor"]
    assert accessor["member"] == '${google_service_account.group["nightly"].member}'
    secret_names = set(default_of(blocks(MODULE, "variable")["llm_secret_names"]))
    assert secret_fields <= secret_names, f"settings secrets without a secret: {secret_fields - secret_names}"

    env_text = str(module_locals()["cloud_env"]) + str(module_locals()["training_env"])
    for name in secret_names:
        assert name not in env_text
    fn = resources(MODULE)["google_cloudfunctions2_function.http"]["service_config"][0]
    secret_env = fn["dynamic"][0]['"secret_environment_variables"']
    assert "local.mounted_secrets" in secret_env["for_each"]
    assert "llm" in secret_env["for_each"]  # only groups that call an LLM get them


def test_no_secret_values_anywhere_in_terraform():
    all_res = {}
    for folder in (MODULE, TF / "bootstrap", *(TF / "environments" / e for e in ENVIRONMENTS)):
        all_res.update(resources(folder))
    assert not [r for r in all_res if r.startswith("google_secret_manager_secret_version.")]
    for name, body in all_res.items():
        if name.startswith("google_sql_user."):
            assert "password" not in body and "password_wo" not in body, name
            assert unquote(body["type"]) in {"CLOUD_IAM_SERVICE_ACCOUNT", "CLOUD_IAM_USER"}, name

    leaks = re.compile(
        r"sk-[A-Za-z0-9_-]{20,}|sk-ant-[A-Za-z0-9_-]{10,}|AIza[0-9A-Za-z_-]{35}|-----BEGIN [A-Z ]*PRIVATE KEY"
        r"|\"private_key\"|secret_data|password\s*=\s*\"[^\"]+\""
    )
    files = [p for p in TF.rglob("*") if p.is_file() and ".terraform" not in p.parts]
    files.append(REPO / "cloudbuild.yaml")
    for path in files:
        hits = leaks.findall(path.read_text())
        assert not hits, f"{path.relative_to(REPO)} looks like it holds a secret: {hits}"


def test_references_resolve_in_the_module():
    declared_vars = set(blocks(MODULE, "variable"))
    declared_locals = set(module_locals())
    declared_res = set(resources(MODULE))
    declared_data = {f"data.{k}" for k in resources(MODULE, "data")}
    used_vars: set[str] = set()
    tree = {k: v for k, v in load_dir(MODULE).items() if k != "variable"}
    # Variable validations may only reference their own variable or others: check all.
    tree["variable"] = load_dir(MODULE).get("variable", [])
    for text in strings(tree):
        for kind, name, data_ref, res_ref in REF.findall(text):
            if kind == "var":
                used_vars.add(name)
                assert name in declared_vars, f"undeclared var.{name}"
            elif kind == "local":
                assert name in declared_locals, f"undefined local.{name}"
            elif data_ref:
                assert data_ref in declared_data, f"undeclared {data_ref}"
            elif res_ref:
                assert res_ref in declared_res, f"undeclared resource {res_ref}"
    assert declared_vars <= used_vars, f"unused variables: {sorted(declared_vars - used_vars)}"
    for template in re.findall(r'templatefile\("\$\{path\.module\}/([^"]+)"', " ".join(strings(tree))):
        assert (MODULE / template).is_file(), template
    for path in re.findall(r'file\("\$\{path\.module\}/([^"]+)"', " ".join(strings(tree))):
        assert (MODULE / path).is_file(), path
    for path in re.findall(r'"\$\{path\.module\}/(scripts/[^"]+)"', " ".join(strings(tree))):
        assert (MODULE / path).is_file(), path


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_roots_wire_the_module(env):
    root = TF / "environments" / env
    backend = load_dir(root)["terraform"][0]["backend"][0]
    assert list(backend) == ['"gcs"']
    assert set(backend['"gcs"']) <= {"__is_block__"}, "backend must be partial (bucket given at init)"
    assert (root / "backend.hcl.example").is_file()

    module = blocks(root, "module")["cognitive_core"]
    assert unquote(module["source"]) == "../../modules/cognitive_core"
    inputs = {k for k in module if not k.startswith("__") and k != "source"}
    module_vars = blocks(MODULE, "variable")
    assert inputs <= set(module_vars), f"unknown module inputs: {inputs - set(module_vars)}"
    required = {name for name, body in module_vars.items() if "default" not in body}
    assert required <= inputs, f"required module inputs not given: {required - inputs}"
    assert unquote(module["environment"]) == env
    assert module["deletion_protection"] is (env == "prod")

    root_vars = set(blocks(root, "variable"))
    module_outputs = set(blocks(MODULE, "output"))
    for text in strings({k: v for k, v in load_dir(root).items() if k != "variable"}):
        for kind, name, _, _ in REF.findall(text):
            if kind == "var":
                assert name in root_vars, f"{env}: undeclared var.{name}"
        for out in re.findall(r"module\.cognitive_core\.([a-z0-9_]+)", text):
            assert out in module_outputs, f"{env}: module has no output {out}"


def test_variables_and_outputs_have_descriptions():
    folders = [MODULE, TF / "bootstrap", *(TF / "environments" / e for e in ENVIRONMENTS)]
    for folder in folders:
        for kind in ("variable", "output"):
            for name, body in blocks(folder, kind).items():
                assert unquote(body.get("description", "")).strip(), f"{folder.name}: {kind} {name} has no description"


def test_iam_is_least_privilege():
    res = resources(MODULE)
    broad = {"roles/owner", "roles/editor", "roles/viewer", "roles/storage.admin", "roles/iam.serviceAccountAdmin"}
    project_roles = set()
    for name, body in res.items():
        role = unquote(body.get("role", ""))
        assert role not in broad, f"{name} grants {role}"
        if name.startswith("google_project_iam_member."):
            assert not role.startswith(("roles/storage.", "roles/secretmanager.", "roles/pubsub.")), (
                f"{name}: {role} must be granted on the bucket/secret/topic, not the project"
            )
            project_roles.add(role or body["role"])
    admin = res["google_storage_bucket_iam_member.artifacts_admin"]
    assert unquote(admin["role"]) == "roles/storage.objectAdmin"
    assert admin["bucket"] == "${google_storage_bucket.artifacts.name}"
    assert 'cfg.models == "write"' in admin["for_each"]
    writers = {g for g, cfg in module_locals()["groups"].items() if unquote(cfg["models"]) == "write"}
    assert writers == {"retrain", "trainer"}, "only the learning loop may publish models"
    for role in ("roles/cloudsql.client", "roles/cloudsql.instanceUser", "roles/aiplatform.user"):
        assert any(unquote(b.get("role", "")) == role for b in res.values()), role
    accessor = res["google_secret_manager_secret_iam_member.llm_accessor"]
    assert unquote(accessor["role"]) == "roles/secretmanager.secretAccessor"
    assert "cfg.llm" in accessor["for_each"]


def test_cloud_sql_has_pgvector_iam_auth_and_backups():
    res = resources(MODULE)
    variables = blocks(MODULE, "variable")
    assert int(re.match(r"POSTGRES_(\d+)$", default_of(variables["sql_database_version"])).group(1)) >= 13
    instance = res["google_sql_database_instance.main"]
    assert instance["deletion_protection"] == "${var.deletion_protection}"
    settings = instance["settings"][0]
    flags = {unquote(f["name"]): unquote(f["value"]) for f in settings["database_flags"]}
    assert flags["cloudsql.iam_authentication"] == "on"
    backup = settings["backup_configuration"][0]
    assert backup["enabled"] is True
    assert settings["deletion_protection_enabled"] == "${var.deletion_protection}"
    assert "local.private_sql" in settings["ip_configuration"][0]["ipv4_enabled"]
    assert unquote(res["google_sql_user.group"]["type"]) == "CLOUD_IAM_SERVICE_ACCOUNT"


def test_artifacts_bucket_and_events():
    res = resources(MODULE)
    bucket = res["google_storage_bucket.artifacts"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["versioning"][0]["enabled"] is True
    prefixes = [p for rule in bucket["lifecycle_rule"] for p in rule["condition"][0].get("matches_prefix", [])]
    assert '"datasets/"' in prefixes or "datasets/" in prefixes

    topic = res["google_pubsub_topic.retrain_requests"]
    assert unquote(topic["name"]).endswith("-retrain-requests")
    assert unquote(res["google_pubsub_topic.retrain_dead_letter"]["name"]).endswith("-dead-letter")

    # The nightly tick goes to the nightly function, which exports the dataset version and
    # publishes the night's retrain request through the outbox (shared/learning/nightly.py);
    # the request it publishes is one the retrain function accepts.
    from shared.learning.outbox import OutboxMessage
    from shared.learning.runs import parse_pubsub_event

    target = res["google_cloud_scheduler_job.nightly_learning"]["pubsub_target"][0]
    assert target["topic_name"] == "${google_pubsub_topic.learning_nightly.id}"
    assert unquote(res["google_pubsub_topic.learning_nightly"]["name"]).endswith("-learning-nightly")
    assert "google_cloud_scheduler_job.nightly_retrain" not in res  # no publish that bypasses the outbox
    # The reconcile tick goes straight to retrain-requests: it records ended Vertex AI jobs
    # and creates no run (shared/learning/runs.py: RECONCILE).
    import base64 as b64
    import json as js

    tick = res["google_cloud_scheduler_job.retrain_reconcile"]["pubsub_target"][0]
    assert tick["topic_name"] == "${google_pubsub_topic.retrain_requests.id}"
    assert unquote(tick["attributes"]["trigger"]) == "reconcile"
    data = b64.b64encode(js.dumps({"trigger": "reconcile"}).encode()).decode()
    assert parse_pubsub_event({"message": {"messageId": "t", "data": data}}).trigger == "reconcile"
    message = OutboxMessage.from_row({"id": 1, "reason": "schedule", "payload": {"date": "2026-11-30"}})
    request = parse_pubsub_event(message.push_envelope("1"))
    assert request.trigger == "schedule"
    groups = module_locals()["groups"]
    assert unquote(groups["nightly"]["models"]) == "datasets" and groups["nightly"]["publish"] in (True, "true")
    writer = res["google_storage_bucket_iam_member.datasets_writer"]
    assert "/objects/datasets/" in writer["condition"][0]["expression"]


def test_cloudbuild_runs_tests_build_deploy_and_migrations():
    yaml = pytest.importorskip("yaml")
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


def test_runtime_grants_give_data_rights_but_no_ddl(engine):
    """templates/db_runtime_grants.sql, run by scripts/run_sql.py as cloudbuild.yaml does,
    on the real migrated schema: a member of cognitive_runtime can read and write every
    table, including tables created later (default privileges), and cannot create any.
    Runs in a transaction that is rolled back: roles are transactional in Postgres."""
    import importlib.util

    import sqlalchemy as sa

    spec = importlib.util.spec_from_file_location("run_sql", MODULE / "scripts" / "run_sql.py")
    run_sql = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_sql)
    grants = (MODULE / "templates" / "db_runtime_grants.sql").read_text()

    with engine.connect() as conn:
        tx = conn.begin()
        try:
            conn.execute(sa.text("CREATE ROLE cognitive_runtime NOLOGIN"))
            conn.execute(sa.text("CREATE ROLE cc_test_function NOLOGIN IN ROLE cognitive_runtime"))
            assert run_sql.run(conn, grants) >= 5
            conn.execute(sa.text("CREATE TABLE cc_test_later (id int)"))  # a later migration
            missing = (
                conn.execute(
                    sa.text(
                        """SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                     AND NOT has_table_privilege('cc_test_function', c.oid, 'SELECT, INSERT, UPDATE, DELETE')"""
                    )
                )
                .scalars()
                .all()
            )
            assert missing == []
            tables = conn.execute(sa.text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).scalar()
            assert tables > 5  # the migrated schema really is there
            can_create = sa.text("SELECT has_schema_privilege('cc_test_function', 'public', 'CREATE')")
            assert conn.execute(can_create).scalar() is False
            conn.execute(sa.text("SET ROLE cc_test_function"))
            conn.execute(sa.text("SELECT count(*) FROM topics")).scalar()
            with pytest.raises(sa.exc.ProgrammingError):
                conn.execute(sa.text("CREATE TABLE cc_test_forbidden (id int)"))
        finally:
            tx.rollback()
