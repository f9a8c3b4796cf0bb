# Cloud SQL for PostgreSQL with pgvector, IAM database authentication and backups.
# The functions reach it through cloud-sql-python-connector (CLOUD_SQL_INSTANCE), as
# IAM database users named after their service accounts (DB_USER, DB_IAM_AUTH=true):
# no database password exists anywhere in this configuration.

resource "google_sql_database_instance" "main" {
  # checkov:skip=CKV_GCP_60:dev keeps a public IP with no authorized networks (only the IAM-authorised mTLS connector gets in); prod sets sql_private_network, which its root requires (tests/deploy/test_terraform_module.py)
  # checkov:skip=CKV_GCP_6:ssl_mode ENCRYPTED_ONLY: every client is the Cloud SQL connector, which is mutual TLS already; client certificates on top would lock out Cloud SQL Studio for the one-time bootstrap
  # checkov:skip=CKV_GCP_79:the major version is a variable (POSTGRES_17 default, pgvector with HNSW); upgrades are a planned migration, not a lint
  # checkov:skip=CKV2_GCP_13:log_duration logs a line per statement (volume and cost); the functions log their own latency per route (log-based metrics)
  project             = var.project_id
  name                = "${local.prefix}-pg"
  region              = var.region
  database_version    = var.sql_database_version
  deletion_protection = var.deletion_protection

  settings {
    edition                     = var.sql_edition
    tier                        = var.sql_tier
    availability_type           = var.sql_availability_type
    disk_type                   = "PD_SSD"
    disk_size                   = var.sql_disk_size_gb
    disk_autoresize             = true
    deletion_protection_enabled = var.deletion_protection
    user_labels                 = local.labels

    database_flags {
      name  = "cloudsql.iam_authentication"
      value = "on"
    }

    database_flags {
      name  = "max_connections"
      value = tostring(var.sql_max_connections)
    }

    # Audit and troubleshooting logs (CIS / checkov CKV_GCP_51..57, 108..111): who
    # connected, lock waits, temp files, errors with their statement, DDL and role
    # changes through pgAudit. Statement durations are not logged (-1): the functions
    # log their own latency, and statements may hold student text.
    database_flags {
      name  = "log_checkpoints"
      value = "on"
    }

    database_flags {
      name  = "log_connections"
      value = "on"
    }

    database_flags {
      name  = "log_disconnections"
      value = "on"
    }

    database_flags {
      name  = "log_lock_waits"
      value = "on"
    }

    database_flags {
      name  = "log_hostname"
      value = "on"
    }

    database_flags {
      name  = "log_min_messages"
      value = "error"
    }

    database_flags {
      name  = "log_min_error_statement"
      value = "error"
    }

    database_flags {
      name  = "log_temp_files"
      value = "0"
    }

    database_flags {
      name  = "log_min_duration_statement"
      value = "-1"
    }

    database_flags {
      name  = "log_statement"
      value = "ddl"
    }

    database_flags {
      name  = "cloudsql.enable_pgaudit"
      value = "on"
    }

    database_flags {
      name  = "pgaudit.log"
      value = "ddl,role"
    }

    backup_configuration {
      enabled                        = true
      start_time                     = var.sql_backup_start_time
      point_in_time_recovery_enabled = var.sql_point_in_time_recovery
      transaction_log_retention_days = min(7, var.sql_retained_backups)

      backup_retention_settings {
        retained_backups = var.sql_retained_backups
        retention_unit   = "COUNT"
      }
    }

    ip_configuration {
      # Public IP without authorized networks: only the connector (IAM-authorised,
      # TLS) gets in. Private IP: no public address at all.
      ipv4_enabled    = !local.private_sql
      private_network = var.sql_private_network
      ssl_mode        = "ENCRYPTED_ONLY"
    }

    maintenance_window {
      day          = 7
      hour         = 4
      update_track = "stable"
    }

    insights_config {
      query_insights_enabled = true
    }
  }

  depends_on = [google_project_service.api, google_service_networking_connection.private_sql]
}

resource "google_sql_database" "main" {
  project  = var.project_id
  name     = var.db_name
  instance = google_sql_database_instance.main.name
}

# One IAM database user per runtime service account; the Postgres role name is the
# account email without ".gserviceaccount.com".
resource "google_sql_user" "group" {
  for_each = google_service_account.group

  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = local.db_users[each.key]
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

resource "google_sql_user" "migrator" {
  count = var.migrator_service_account == null ? 0 : 1

  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = trimsuffix(var.migrator_service_account, ".gserviceaccount.com")
  type     = "CLOUD_IAM_SERVICE_ACCOUNT"
}

resource "google_sql_user" "human" {
  for_each = toset(var.db_iam_users)

  project  = var.project_id
  instance = google_sql_database_instance.main.name
  name     = each.value
  type     = "CLOUD_IAM_USER"
}

# --- private services access + a connector for the functions -----------------------------
# For a private-IP database and for Memorystore (redis.tf) alike, on local.vpc_network.
# The resource names predate Memorystore; they stay so existing states need no move.

resource "google_compute_global_address" "private_sql" {
  count = local.use_vpc ? 1 : 0

  project       = var.project_id
  name          = "${local.prefix}-sql-range"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = local.vpc_network

  depends_on = [google_project_service.api]
}

resource "google_service_networking_connection" "private_sql" {
  count = local.use_vpc ? 1 : 0

  network                 = local.vpc_network
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_sql[0].name]
}

resource "google_vpc_access_connector" "functions" {
  count = local.use_vpc ? 1 : 0

  project       = var.project_id
  name          = "${local.prefix}-vpc"
  region        = var.region
  network       = local.vpc_network
  ip_cidr_range = var.vpc_connector_cidr
  min_instances = 2
  max_instances = 3

  depends_on = [google_project_service.api]
}

# The SQL that gives the IAM users their rights (docs/deploy.md, "Database rights"):
# the bootstrap runs once as `postgres`; the grants run as the migrator after migrations.
locals {
  db_bootstrap_sql = templatefile("${path.module}/templates/db_bootstrap.sql.tftpl", {
    migrator      = var.migrator_service_account == null ? "" : google_sql_user.migrator[0].name
    runtime_users = sort([for u in google_sql_user.group : u.name])
    human_users   = sort([for u in google_sql_user.human : u.name])
  })
  db_runtime_grants_sql = file("${path.module}/templates/db_runtime_grants.sql")
}
