"""One typed settings object for every function, read from environment variables.

Every default is the *local* one, so a fresh clone runs with no configuration at
all; the cloud overrides them through the function's environment (see
`.env.example` and `terraform/`). Secrets never have defaults here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# Variables the Google runtimes set themselves: Cloud Run services and Cloud Functions
# (2nd gen, and 1st gen on Python 3.8+) set K_SERVICE, Cloud Run jobs CLOUD_RUN_JOB.
# FUNCTION_TARGET is deliberately not one of them: functions-framework's create_app
# sets it in-process, so the local server (which uses create_app) would look like the
# cloud. See docs/security.md.
CLOUD_RUNTIME_VARS = ("K_SERVICE", "CLOUD_RUN_JOB")


def process_env_is_cloud(environ: Mapping[str, str] | None = None) -> bool:
    """The cloud detection, from the process environment alone (no .env file)."""
    env = os.environ if environ is None else environ
    return env.get("COGNITIVE_ENV", "").strip().lower() == "cloud" or any(env.get(v) for v in CLOUD_RUNTIME_VARS)


def _truthy(value: str | None) -> bool:
    """A flag as the tools that read it understand it; anything unusual counts as on."""
    return value is not None and value.strip().lower() not in ("", "0", "false", "no", "off")


class Settings(BaseSettings):
    """Configuration shared by every function, the local server and the CLIs."""

    model_config = SettingsConfigDict(
        env_file=os.environ.get("COGNITIVE_ENV_FILE", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        protected_namespaces=(),
    )

    # --- where we run -------------------------------------------------------
    environment: Literal["local", "test", "cloud"] = Field("local", validation_alias="COGNITIVE_ENV")
    k_service: str | None = Field(
        None,
        validation_alias="K_SERVICE",
        description="Set by Cloud Run and Cloud Functions; its presence means the cloud, whatever COGNITIVE_ENV says.",
    )
    cloud_run_job: str | None = Field(
        None, validation_alias="CLOUD_RUN_JOB", description="Set by Cloud Run jobs; its presence means the cloud."
    )
    state_dir: Path = Field(
        REPO_ROOT / ".state",
        validation_alias="STATE_DIR",
        description="Git-ignored folder for the embedded database, built models and logs.",
    )
    gcp_project: str = Field("demo-cognitive-core", validation_alias="GOOGLE_CLOUD_PROJECT")
    gcp_region: str = Field("us-central1", validation_alias="GOOGLE_CLOUD_REGION")

    # --- database: DATABASE_URL, Cloud SQL, or the embedded server -------------
    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    cloud_sql_instance: str | None = Field(
        None,
        validation_alias="CLOUD_SQL_INSTANCE",
        description="project:region:instance; when set the Cloud SQL connector is used.",
    )
    db_user: str = Field("postgres", validation_alias="DB_USER")
    db_password: str | None = Field(None, validation_alias="DB_PASSWORD")
    db_name: str = Field("cognitive", validation_alias="DB_NAME")
    db_iam_auth: bool = Field(False, validation_alias="DB_IAM_AUTH")
    db_ip_type: Literal["public", "private", "psc"] = Field(
        "public",
        validation_alias="DB_IP_TYPE",
        description="Which address the Cloud SQL connector dials; private when the instance has no public IP.",
    )
    db_vector_selftest: bool = Field(
        True,
        validation_alias="DB_VECTOR_SELFTEST",
        description=(
            "Prove pgvector works on this machine (384-d normalisation, HNSW build/insert/scan, <=>) "
            "before the pool opens; embedded server and DATABASE_URL only, never Cloud SQL."
        ),
    )
    db_pool_size: int = Field(5, ge=1, validation_alias="DB_POOL_SIZE")
    db_max_overflow: int = Field(2, ge=0, validation_alias="DB_MAX_OVERFLOW")
    pg_data_dir: Path | None = Field(
        None,
        validation_alias="PG_DATA_DIR",
        description="Embedded Postgres data directory; defaults to <state_dir>/pgdata.",
    )

    # --- HTTP ---------------------------------------------------------------
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: [
            "http://localhost:5000",
            "http://127.0.0.1:5000",
            "http://localhost:8080",
        ],
        validation_alias="CORS_ORIGINS",
    )
    max_request_bytes: int = Field(64 * 1024, ge=1024, validation_alias="MAX_REQUEST_BYTES")

    # --- auth ---------------------------------------------------------------
    firebase_project_id: str | None = Field(None, validation_alias="FIREBASE_PROJECT_ID")
    auth_emulator_host: str | None = Field(
        None,
        validation_alias="FIREBASE_AUTH_EMULATOR_HOST",
        description=(
            "Firebase Auth emulator mode, an explicit local/test opt-in: ID tokens are "
            "checked for issuer, audience and times but not signature. Unset (the default) "
            "means real verification; in the cloud a set value refuses to serve."
        ),
    )

    # --- models -------------------------------------------------------------
    model_store_uri: str | None = Field(
        None,
        validation_alias="MODEL_STORE_URI",
        description="gs://bucket/models or a local folder; defaults to <state_dir>/models.",
    )
    model_pointer_ttl_s: float = Field(30.0, ge=0, validation_alias="MODEL_POINTER_TTL_S")
    served_models: Annotated[list[str], NoDecode] | None = Field(
        None,
        validation_alias="SERVED_MODELS",
        description=(
            "Comma-separated models this process loads from each version (e.g. encoder,intent), or `all`. "
            "Unset: what the imported functions declare next to their entry points "
            "(functions/<name>/main.py, serve_models), or every model when none declares any (CLIs, scripts)."
        ),
    )

    warm_start: bool = Field(
        True,
        validation_alias="WARM_START",
        description=(
            "Load the served models, open a database connection and build the first LLM client in "
            "background threads as soon as a serving worker starts, instead of in its first request "
            "(shared/warm_up.py)."
        ),
    )

    # --- embeddings ---------------------------------------------------------
    embedding_backend: Literal["onnx", "vertex"] = Field(
        "onnx",
        validation_alias="EMBEDDING_BACKEND",
        description="onnx: the published INT8 MiniLM encoder; vertex: Vertex AI embeddings.",
    )
    vertex_embedding_model: str = Field("text-embedding-005", validation_alias="VERTEX_EMBEDDING_MODEL")
    vertex_embedding_dim: int | None = Field(None, ge=1, validation_alias="VERTEX_EMBEDDING_DIM")
    embedding_cache_size: int = Field(4096, ge=0, validation_alias="EMBEDDING_CACHE_SIZE")
    redis_url: SecretStr | None = Field(
        None,
        validation_alias="REDIS_URL",
        description=(
            "URL of the shared embedding cache and the per-user rate limits (shared/http/limits.py "
            "reads the variable itself, like RATE_LIMITS); unset: in-process LRU and per-instance "
            "limits. Locally redis://host:6379/0; "
            "in the cloud rediss://:<AUTH string>@<Memorystore IP>:6378/0, mounted from Secret Manager "
            "(it carries the AUTH string, hence a secret: never logged, never in repr)."
        ),
    )
    redis_ca_cert: str | None = Field(
        None,
        validation_alias="REDIS_CA_CERT",
        description=(
            "PEM of the CA(s) that sign the Redis server's TLS certificate (Memorystore's per-instance "
            "server CA); only for rediss:// URLs. Public, so a plain variable."
        ),
    )
    embedding_cache_ttl_s: int = Field(30 * 24 * 3600, ge=60, validation_alias="EMBEDDING_CACHE_TTL_S")

    # --- LLM router (shared/llm/) -------------------------------------------
    llm_providers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["offline"],
        validation_alias="LLM_PROVIDERS",
        description=(
            "Providers in fallback order, comma-separated: vertex, openai, anthropic, local, gguf, offline. "
            "The local default is the offline provider only: no network, no key."
        ),
    )
    llm_offline_last_resort: bool = Field(
        True,
        validation_alias="LLM_OFFLINE_LAST_RESORT",
        description="Append the offline provider to the chain so a reply is always possible.",
    )
    llm_models: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "vertex": {"default": "gemini-2.5-flash", "explanation": "gemini-2.5-pro", "quiz": "gemini-2.5-flash-lite"},
            "openai": {"default": "gpt-4.1-mini", "explanation": "gpt-4.1", "quiz": "gpt-4.1-mini"},
            "anthropic": {"default": "claude-haiku-4-5", "explanation": "claude-sonnet-4-5"},
            "offline": {"default": "offline-composer-1"},
        },
        validation_alias="LLM_MODELS",
        description='JSON {provider: {task or "default": model}}: the model each provider uses per task.',
    )
    llm_timeout_s: float = Field(30.0, gt=0, validation_alias="LLM_TIMEOUT_S")
    llm_deadline_s: float = Field(
        8.0,
        ge=0,
        validation_alias="LLM_DEADLINE_S",
        description="Total budget of one generate() over every provider and retry; past it only the "
        "offline provider (last resort) is tried. Below the web client's 10 s offline switch. 0 = none.",
    )
    llm_max_attempts: int = Field(
        3, ge=1, validation_alias="LLM_MAX_ATTEMPTS", description="Tries per provider on transient errors."
    )
    llm_retry_initial_s: float = Field(0.5, ge=0, validation_alias="LLM_RETRY_INITIAL_S")
    llm_retry_max_s: float = Field(8.0, ge=0, validation_alias="LLM_RETRY_MAX_S")
    llm_breaker_failures: int = Field(
        5,
        ge=1,
        validation_alias="LLM_BREAKER_FAILURES",
        description="Consecutive failed calls that open a provider's circuit breaker.",
    )
    llm_breaker_cooldown_s: float = Field(30.0, ge=0, validation_alias="LLM_BREAKER_COOLDOWN_S")
    llm_json_attempts: int = Field(
        2,
        ge=1,
        validation_alias="LLM_JSON_ATTEMPTS",
        description="Structured output: answers a provider may get wrong before the next one is asked.",
    )
    llm_max_output_tokens: int = Field(1024, ge=1, validation_alias="LLM_MAX_OUTPUT_TOKENS")
    llm_task_tiers: dict[str, int] | None = Field(
        None,
        validation_alias="LLM_TASK_TIERS",
        description="JSON {task: tier} over shared/llm/routing.json's tiers (1 local, 2 fast hosted, 3 strongest).",
    )
    llm_routes: dict[str, list[dict[str, Any]]] | None = Field(
        None,
        validation_alias="LLM_ROUTES",
        description='JSON {task: [{"provider", "model", "tier", "price"}]} replacing routing.json\'s routes.',
    )
    llm_daily_budget_usd: float | None = Field(
        None,
        ge=0,
        validation_alias="LLM_DAILY_BUDGET_USD",
        description="Daily LLM spend cap of the deployment (UTC day, from generation_log); unset or 0 = none.",
    )
    llm_user_daily_budget_usd: float | None = Field(
        None, ge=0, validation_alias="LLM_USER_DAILY_BUDGET_USD", description="The same cap per user; unset = none."
    )
    llm_budget_degrade_at: float = Field(
        0.8,
        gt=0,
        le=1,
        validation_alias="LLM_BUDGET_DEGRADE_AT",
        description="Share of a budget past which the router routes cheapest first, whatever the task's tier.",
    )
    llm_spend_cache_s: float = Field(
        10.0, ge=0, validation_alias="LLM_SPEND_CACHE_S", description="How long one instance reuses a spend read."
    )
    vertex_llm_location: str | None = Field(
        None, validation_alias="VERTEX_LLM_LOCATION", description="Defaults to GOOGLE_CLOUD_REGION."
    )
    vertex_base_url: str | None = Field(None, validation_alias="VERTEX_BASE_URL")
    openai_api_key: SecretStr | None = Field(None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    anthropic_api_key: SecretStr | None = Field(None, validation_alias="ANTHROPIC_API_KEY")
    anthropic_base_url: str | None = Field(None, validation_alias="ANTHROPIC_BASE_URL")

    # --- local models (docs/llm.md, "Local models") ---------------------------
    local_llm_base_url: str | None = Field(
        None,
        validation_alias="LOCAL_LLM_BASE_URL",
        description="OpenAI-compatible endpoint of a local model server (llama.cpp, Ollama, vLLM, LM Studio), "
        "e.g. http://127.0.0.1:8081/v1; the `local` provider is enabled when it is set and listed.",
    )
    local_llm_model: str = Field(
        "local-model",
        validation_alias="LOCAL_LLM_MODEL",
        description="The model name that server expects (Ollama: the tag, e.g. llama3.2:1b).",
    )
    local_llm_api_key: SecretStr | None = Field(
        None, validation_alias="LOCAL_LLM_API_KEY", description="Only for servers started with a key."
    )
    gguf_model_path: Path | None = Field(
        None,
        validation_alias="GGUF_MODEL_PATH",
        description="A .gguf file run in-process by the `gguf` provider (needs the llama-cpp-python extra).",
    )
    gguf_context: int = Field(4096, ge=256, validation_alias="GGUF_CONTEXT")
    gguf_threads: int | None = Field(None, ge=1, validation_alias="GGUF_THREADS")

    # --- prediction -----------------------------------------------------------
    retrain_every_completed_tasks: int = Field(
        5,
        ge=1,
        validation_alias="RETRAIN_EVERY_COMPLETED_TASKS",
        description="Every N completed tasks (all users) a retrain request is recorded.",
    )
    predictor_irt_ttl_s: float = Field(
        300.0,
        ge=0,
        validation_alias="PREDICTOR_IRT_TTL_S",
        description="How long the fitted IRT fallback is reused before it is refitted from the attempts.",
    )

    # --- learning loop in the cloud (set by terraform/) ---------------------
    retrain_topic: str | None = Field(
        None,
        validation_alias="RETRAIN_TOPIC",
        description="projects/<p>/topics/<t> that retrain requests are published to; unset locally.",
    )
    datasets_uri: str | None = Field(
        None,
        validation_alias="DATASETS_URI",
        description="gs://bucket/datasets or a folder for the nightly Parquet exports (default <state_dir>/datasets).",
    )
    retrain_after_verified_labels: int = Field(
        500,
        ge=1,
        validation_alias="RETRAIN_AFTER_VERIFIED_LABELS",
        description="A retrain request for the intent model when verified labels since its last training exceed this.",
    )
    retrain_publish_timeout_s: float = Field(
        30.0,
        gt=0,
        validation_alias="RETRAIN_PUBLISH_TIMEOUT_S",
        description="How long the outbox sweep waits for one publish to be confirmed before leaving the row pending.",
    )
    silver_labels_per_night: int = Field(
        200,
        ge=0,
        validation_alias="SILVER_LABELS_PER_NIGHT",
        description="Unlabelled interactions an LLM grades into silver labels on each nightly tick (0 = none); "
        "with only the offline provider nothing is graded.",
    )
    silver_labels_budget_s: float = Field(
        240.0,
        gt=0,
        validation_alias="SILVER_LABELS_BUDGET_S",
        description="Wall time the nightly silver labelling may use (the export and the sweep follow it).",
    )
    dataset_pseudonym_key: SecretStr | None = Field(
        None,
        validation_alias="DATASET_PSEUDONYM_KEY",
        description=(
            "HMAC key that pseudonymises user ids in the dataset exports. Required in the cloud; "
            "locally a fixed development key is used."
        ),
    )
    training_image_uri: str | None = Field(
        None, validation_alias="TRAINING_IMAGE_URI", description="model_export/ container for Vertex AI jobs."
    )
    training_machine_type: str = Field("n1-standard-4", validation_alias="TRAINING_MACHINE_TYPE")
    training_service_account: str | None = Field(
        None, validation_alias="TRAINING_SERVICE_ACCOUNT", description="Identity the training job runs as."
    )
    training_staging_uri: str | None = Field(
        None, validation_alias="TRAINING_STAGING_URI", description="gs:// staging folder of Vertex AI jobs."
    )
    training_shared_data_uri: str | None = Field(
        None,
        validation_alias="TRAINING_SHARED_DATA_URI",
        description="gs://bucket/shared-data: the public data sets (ASSISTments prior) the Vertex AI job "
        "reads through its Cloud Storage mount (/gcs/bucket/shared-data).",
    )
    training_timeout_s: int = Field(
        3 * 3600,
        ge=600,
        validation_alias="TRAINING_TIMEOUT_S",
        description="Vertex AI stops a training job that runs longer (the run is then recorded as failed).",
    )
    vertex_api_endpoint: str | None = Field(
        None,
        validation_alias="VERTEX_API_ENDPOINT",
        description="Vertex AI API host for training jobs; defaults to the region's endpoint. Tests: a loopback stub.",
    )
    training_python: Path = Field(
        REPO_ROOT / ".venv-train" / "bin" / "python",
        validation_alias="TRAINING_PYTHON",
        description="Interpreter of the training venv; locally the retrain function runs the job with it.",
    )

    # --- logging and debugging ------------------------------------------------
    log_level: str = Field("INFO", validation_alias="LOG_LEVEL")
    ff_debug: str | None = Field(
        None,
        validation_alias="DEBUG",
        description="functions-framework's --debug: Flask's development server and debugger. Refused in the cloud.",
    )
    flask_debug: str | None = Field(
        None, validation_alias="FLASK_DEBUG", description="Flask's debug mode. Refused in the cloud."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """A `.env` file is a local convenience: in the cloud only the function's own
        environment counts, so a stray `.env` in a deployed folder changes nothing."""
        if process_env_is_cloud():
            return (init_settings, env_settings, file_secret_settings)
        return (init_settings, env_settings, dotenv_settings, file_secret_settings)

    @field_validator("cors_origins", "llm_providers", "served_models", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Accept a comma-separated list, the natural shape of an env variable."""
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator(
        "auth_emulator_host",
        "k_service",
        "cloud_run_job",
        "database_url",
        "cloud_sql_instance",
        "openai_api_key",
        "anthropic_api_key",
        "vertex_base_url",
        "openai_base_url",
        "anthropic_base_url",
        "llm_daily_budget_usd",
        "llm_user_daily_budget_usd",
        "llm_task_tiers",
        "llm_routes",
        "local_llm_base_url",
        "local_llm_api_key",
        "gguf_model_path",
        "gguf_threads",
        "redis_url",
        "redis_ca_cert",
        "retrain_topic",
        "datasets_uri",
        "dataset_pseudonym_key",
        "training_image_uri",
        "training_service_account",
        "training_staging_uri",
        "training_shared_data_uri",
        "vertex_api_endpoint",
        "served_models",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _check_redis(self) -> Settings:
        """A cache URL the client cannot use, or a CA with no TLS to use it for, is a
        deploy mistake worth failing on at start (the messages never echo the URL)."""
        if self.redis_url is None:
            return self
        scheme = urlsplit(self.redis_url.get_secret_value()).scheme
        if scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"REDIS_URL must be redis://, rediss:// or unix:// (got a {scheme or 'schemeless'} URL)")
        if self.redis_ca_cert and scheme != "rediss":
            raise ValueError("REDIS_CA_CERT is set but REDIS_URL is not rediss:// (TLS): the CA would be ignored")
        return self

    @property
    def in_cloud(self) -> bool:
        """Running in Google Cloud: COGNITIVE_ENV=cloud, or a variable only the Google
        runtimes set (K_SERVICE, CLOUD_RUN_JOB). Either one is enough."""
        return self.environment == "cloud" or bool(self.k_service) or bool(self.cloud_run_job)

    @property
    def unsigned_tokens_allowed(self) -> bool:
        """Auth emulator mode: opted into locally, never honoured in the cloud."""
        return bool(self.auth_emulator_host) and not self.in_cloud

    def cloud_refusals(self) -> list[str]:
        """Local-only conveniences this configuration would switch on in the cloud.

        Empty outside the cloud. In the cloud every entry is a reason to refuse to
        serve (the HTTP router answers 503 and logs them); docs/security.md lists
        each convenience and how it is refused. Messages name settings, never secrets.
        """
        if not self.in_cloud:
            return []
        problems: list[str] = []
        if self.auth_emulator_host:
            problems.append("FIREBASE_AUTH_EMULATOR_HOST is set: Auth emulator mode would accept unsigned ID tokens")
        if "*" in self.cors_origins:
            problems.append("CORS_ORIGINS allows every origin ('*')")
        plain = [o for o in self.cors_origins if o != "*" and not o.lower().startswith("https://")]
        if plain:
            problems.append(f"CORS_ORIGINS has origins that are not https:// (local development origins?): {plain}")
        if self.cloud_sql_instance:
            if not self.db_iam_auth and not self.db_password:
                problems.append("Cloud SQL without DB_IAM_AUTH=true or DB_PASSWORD: the local passwordless login")
            if self.db_user == "postgres":
                problems.append("DB_USER is the default 'postgres' superuser; use the function's own IAM user")
        elif self.database_url:
            url = urlsplit(self.database_url)
            if not url.password and (url.username or "postgres") == "postgres":
                problems.append("DATABASE_URL logs in as 'postgres' without a password: the local default credentials")
        else:
            problems.append("no CLOUD_SQL_INSTANCE or DATABASE_URL: the embedded local Postgres would be started")
        if _truthy(self.ff_debug) or _truthy(self.flask_debug):
            problems.append("DEBUG/FLASK_DEBUG is on: Flask's debugger would answer clients")
        return problems

    @property
    def project_id(self) -> str:
        """The Firebase project whose ID tokens we accept (audience of the token)."""
        return self.firebase_project_id or self.gcp_project

    @property
    def pg_data_path(self) -> Path:
        return self.pg_data_dir or (self.state_dir / "pgdata")

    @property
    def model_store(self) -> str:
        return self.model_store_uri or str(self.state_dir / "models")

    @property
    def datasets_store(self) -> str:
        return self.datasets_uri or str(self.state_dir / "datasets")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings are read once per process: a function instance's env does not change."""
    return Settings()


def reset_settings_cache() -> None:
    """For tests and CLIs that change the environment after import."""
    get_settings.cache_clear()
