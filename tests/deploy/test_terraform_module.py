"""The module and the environment roots hang together: formatting, every var./local./
resource reference resolves (the part of `validate` possible without the provider
schema), the roots wire the module, everything is described, buckets and events.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pytest

from tests.deploy.terraform_hcl import (
    ENVIRONMENTS,
    MODULE,
    REF,
    REPO,
    TF,
    blocks,
    load_dir,
    module_locals,
    resources,
    strings,
    unquote,
)
from tests.needs import missing


def test_terraform_fmt_is_clean():
    terraform = shutil.which("terraform")
    if terraform is None:
        missing("terraform binary not installed")
    proc = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"terraform fmt would change:\n{proc.stdout}{proc.stderr}"


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
    # Thin: the root forwards its settings by name; the environment is data (tfvars).
    root_var_names = set(blocks(root, "variable"))
    forwarded = {k: v for k, v in module.items() if k in inputs}
    for name, value in forwarded.items():
        if name != "cors_origins":  # the project's Hosting sites are always added
            assert value == f"${{var.{name}}}", f"{env}: {name} = {value} (settings belong in environment.tfvars)"
    assert root_var_names == inputs, f"{env}: root settings not forwarded: {root_var_names ^ inputs}"
    # A setting environment.tfvars leaves out is null, which must mean the module's default.
    for name, body in blocks(root, "variable").items():
        if body.get("default", "required") is None:
            module_var = module_vars[name]
            assert module_var.get("nullable") is False or module_var.get("default") is None, (
                f"{env}: null {name} would reach the module as null, not as its default (set nullable = false)"
            )

    root_vars = set(blocks(root, "variable"))
    module_outputs = set(blocks(MODULE, "output"))
    for text in strings({k: v for k, v in load_dir(root).items() if k != "variable"}):
        for kind, name, _, _ in REF.findall(text):
            if kind == "var":
                assert name in root_vars, f"{env}: undeclared var.{name}"
        for out in re.findall(r"module\.cognitive_core\.([a-z0-9_]+)", text):
            assert out in module_outputs, f"{env}: module has no output {out}"


def test_environment_roots_are_the_same_files():
    """Every environment differs only in data: its environment.tfvars (and its backend)."""
    roots = [TF / "environments" / env for env in ENVIRONMENTS]
    code = ["main.tf", "outputs.tf", "variables.tf", "versions.tf"]
    for root in roots:
        assert sorted(p.name for p in root.glob("*.tf")) == code, root
        for name in code:
            assert (root / name).read_bytes() == (roots[0] / name).read_bytes(), f"{root.name}/{name} differs"


def test_variables_and_outputs_have_descriptions():
    folders = [MODULE, TF / "bootstrap", *(TF / "environments" / e for e in ENVIRONMENTS)]
    for folder in folders:
        for kind in ("variable", "output"):
            for name, body in blocks(folder, kind).items():
                assert unquote(body.get("description", "")).strip(), f"{folder.name}: {kind} {name} has no description"


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
    tick = res["google_cloud_scheduler_job.retrain_reconcile"]["pubsub_target"][0]
    assert tick["topic_name"] == "${google_pubsub_topic.retrain_requests.id}"
    assert unquote(tick["attributes"]["trigger"]) == "reconcile"
    data = base64.b64encode(json.dumps({"trigger": "reconcile"}).encode()).decode()
    assert parse_pubsub_event({"message": {"messageId": "t", "data": data}}).trigger == "reconcile"
    message = OutboxMessage.from_row({"id": 1, "reason": "schedule", "payload": {"date": "2026-11-30"}})
    request = parse_pubsub_event(message.push_envelope("1"))
    assert request.trigger == "schedule"
    groups = module_locals()["groups"]
    assert unquote(groups["nightly"]["models"]) == "datasets" and groups["nightly"]["publish"] in (True, "true")
    writer = res["google_storage_bucket_iam_member.datasets_writer"]
    assert "/objects/datasets/" in writer["condition"][0]["expression"]


def test_roots_pin_the_provider_to_one_version():
    """A root (each environment, the bootstrap) pins the google provider exactly, so a
    deploy never picks up a newer provider on its own; the module states the range it
    works with. The lock file (checksums) is made where the registry is reachable."""
    pinned = re.compile(r'source\s*=\s*"hashicorp/google"\s*\n\s*version\s*=\s*"(\d+\.\d+\.\d+)"')
    roots = [REPO / "terraform/environments/dev/versions.tf", REPO / "terraform/environments/prod/versions.tf"]
    roots.append(REPO / "terraform/bootstrap/main.tf")
    versions = set()
    for root in roots:
        found = pinned.search(root.read_text())
        assert found, f"{root.relative_to(REPO)} does not pin the google provider to one version"
        versions.add(found.group(1))
    assert len(versions) == 1, f"the roots pin different provider versions: {sorted(versions)}"
    module = (REPO / "terraform/modules/cognitive_core/versions.tf").read_text()
    low, high = re.search(r'version\s*=\s*">=\s*([\d.]+),\s*<\s*([\d.]+)"', module).groups()
    as_tuple = lambda v: tuple(int(x) for x in v.split("."))  # noqa: E731
    assert as_tuple(low) <= as_tuple(versions.pop()) < as_tuple(high)
