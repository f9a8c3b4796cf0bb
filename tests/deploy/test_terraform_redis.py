"""Issue 16: Memorystore for Redis as the shared embedding cache, as Terraform declares
it: off by default, on the functions' VPC through private services access, AUTH and TLS
on, and the URL (with the AUTH string) reaching only the functions that embed text, from
Secret Manager, with the server CA beside it in the form shared/config.py reads."""

from __future__ import annotations

import re

from tests.deploy.terraform_hcl import MODULE, blocks, default_of, module_locals, resources, unquote


def test_redis_is_a_module_switch_that_is_off_by_default():
    variables = blocks(MODULE, "variable")
    assert variables["redis_enabled"]["default"] is False
    assert default_of(variables["redis_tier"]) == "BASIC"
    assert variables["redis_network"]["default"] is None
    res = resources(MODULE)
    for name in (
        "google_redis_instance.cache",
        "google_secret_manager_secret.redis_url",
        "google_secret_manager_secret_version.redis_url",
    ):
        assert res[name]["count"] == "${var.redis_enabled ? 1 : 0}", name
    assert "var.redis_enabled" in res["google_secret_manager_secret_iam_member.redis_url_accessor"]["for_each"]


def test_the_instance_has_auth_tls_and_private_services_access():
    instance = resources(MODULE)["google_redis_instance.cache"]
    assert instance["auth_enabled"] is True
    assert unquote(instance["transit_encryption_mode"]) == "SERVER_AUTHENTICATION"
    assert unquote(instance["connect_mode"]) == "PRIVATE_SERVICE_ACCESS"
    assert instance["authorized_network"] == "${local.vpc_network}"
    assert "google_service_networking_connection.private_sql" in str(instance["depends_on"])
    conditions = " ".join(p["condition"] for p in instance["lifecycle"][0]["precondition"])
    assert "local.vpc_network != null" in conditions
    assert "var.redis_network == var.sql_private_network" in conditions


def test_the_functions_reach_the_vpc_when_redis_or_a_private_database_needs_it():
    loc = module_locals()
    assert "var.sql_private_network" in loc["vpc_network"] and "var.redis_network" in loc["vpc_network"]
    assert loc["use_vpc"] == "${local.vpc_network != null}"
    res = resources(MODULE)
    for name in ("google_compute_global_address.private_sql", "google_service_networking_connection.private_sql"):
        assert res[name]["count"] == "${local.use_vpc ? 1 : 0}", name
        assert res[name]["network"] == "${local.vpc_network}", name
    connector = res["google_vpc_access_connector.functions"]
    assert connector["count"] == "${local.use_vpc ? 1 : 0}" and connector["network"] == "${local.vpc_network}"
    for kind in ("http", "event"):
        service = res[f"google_cloudfunctions2_function.{kind}"]["service_config"][0]
        assert "local.use_vpc" in service["vpc_connector"]
        assert "PRIVATE_RANGES_ONLY" in service["vpc_connector_egress_settings"]
    apis = loc["apis"]
    assert "local.use_vpc" in apis and "vpcaccess.googleapis.com" in apis
    assert re.search(r"var\.redis_enabled \? \[\s*\"redis\.googleapis\.com\"\s*\]", apis)


def test_the_url_carries_auth_over_tls_and_only_the_embedding_group_reads_it():
    res = resources(MODULE)
    secret_data = unquote(res["google_secret_manager_secret_version.redis_url"]["secret_data"])
    assert secret_data.startswith("rediss://:${google_redis_instance.cache[0].auth_string}@")
    assert "google_redis_instance.cache[0].host" in secret_data and "google_redis_instance.cache[0].port" in secret_data

    groups = module_locals()["groups"]
    cache_groups = {g for g, cfg in groups.items() if cfg["cache"] in (True, "true")}
    assert cache_groups == {"tutor"}  # chat and grading embed text; nothing else does
    accessor = res["google_secret_manager_secret_iam_member.redis_url_accessor"]
    assert "cfg.cache" in accessor["for_each"] and unquote(accessor["role"]) == "roles/secretmanager.secretAccessor"

    http = res["google_cloudfunctions2_function.http"]["service_config"][0]
    mounts = [d['"secret_environment_variables"'] for d in http["dynamic"]]
    redis_mount = [m for m in mounts if "REDIS_URL" in m["for_each"]]
    assert len(redis_mount) == 1 and "local.groups[each.value.group].cache" in redis_mount[0]["for_each"]
    # pinned to the version Terraform wrote: a new AUTH string redeploys the functions
    assert "google_secret_manager_secret_version.redis_url[0].version" in redis_mount[0]["for_each"]
    assert redis_mount[0]["content"][0]["version"] == "${secret_environment_variables.value}"
    assert "REDIS_URL" not in str(module_locals()["cloud_env"])


def test_the_server_ca_reaches_the_settings_shared_config_reads():
    from shared.config import Settings

    loc = module_locals()
    assert "REDIS_CA_CERT" in loc["function_env"] and "local.groups[f.group].cache" in loc["function_env"]
    assert "server_ca_certs[*].cert" in loc["redis_ca_cert"]
    aliases = {f.validation_alias for f in Settings.model_fields.values()}
    assert {"REDIS_URL", "REDIS_CA_CERT"} <= aliases
    # What the functions would get, as the settings class reads it: a secret URL, a CA.
    settings = Settings.model_validate(
        {"REDIS_URL": "rediss://:Xq7-auth-string@10.1.2.3:6378/0", "REDIS_CA_CERT": "-----BEGIN CERTIFICATE-----"}
    )
    assert settings.redis_url is not None and "Xq7-auth-string" not in repr(settings)
