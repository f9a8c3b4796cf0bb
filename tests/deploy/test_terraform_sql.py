"""Cloud SQL as the code needs it: pgvector's Postgres, IAM auth, backups, and runtime
grants that give the functions data rights but no DDL.
"""

from __future__ import annotations

import re

import pytest

from tests.deploy.terraform_hcl import (
    MODULE,
    blocks,
    default_of,
    resources,
    unquote,
)


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
