"""Settings every service reads from the environment (12-factor), with embedded defaults.

Defaults make `make run` work on a bare machine; production refuses them (see `check_production`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = REPO_ROOT / ".run"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    env: Literal["development", "test", "production"] = "development"
    service_name: str = "cchc"
    log_level: str = "INFO"

    database_url: str = Field(
        default="postgresql+asyncpg://postgres@127.0.0.1:5432/cchc",
        description="SQLAlchemy URL; plain postgresql:// is accepted and upgraded to asyncpg.",
    )
    db_pool_size: int = 10

    # Request bodies (shared.request_guard): refused with 413 while streaming, past these.
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="JSON/text bodies.")
    max_upload_bytes: int = Field(
        default=12 * 1024 * 1024, ge=1024, description="multipart/form-data bodies (uploads)."
    )

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_enable_idempotence: bool = Field(
        default=False,
        description="On for real Kafka (docker-compose); tansu rejects idempotent producers.",
    )
    kafka_topic_partitions: int = 6
    kafka_replication_factor: int = 1
    kafka_session_timeout_ms: int = 10_000
    kafka_heartbeat_interval_ms: int = 1_000
    consumer_max_attempts: int = Field(
        default=3, description="Attempts before an invalid event goes to the dead-letter topic."
    )
    consumer_retry_max_backoff_s: float = Field(
        default=30.0,
        description="Cap of the backoff while a dependency is away (those retries never end).",
    )
    kafka_metadata_max_age_ms: int = Field(
        default=5_000,
        description="Refresh topic metadata this often, so a restarted broker is noticed soon.",
    )
    # how often /metrics re-reads consumer lag, dead-letter depth and source health (0 = off)
    metrics_sample_interval_s: float = 15.0
    # share of successful requests written to the access log (4xx/5xx are always logged)
    access_log_sample: float = Field(default=1.0, ge=0.0, le=1.0)
    # OTLP/HTTP collector for traces (e.g. http://otel-collector:4318); tracing is off without it
    otel_exporter_otlp_endpoint: str | None = None
    consumer_batch_size: int = 200

    outbox_poll_interval_s: float = 0.1
    outbox_batch_size: int = 500
    outbox_retention_hours: int = 72

    # Auth: one of a shared secret (HS256), a PEM public key (RS256/ES256) or a JWKS URL.
    jwt_issuer: str = "cchc-monitor"
    jwt_audience: str = "cchc-monitor"
    jwt_algorithms: list[str] = Field(default_factory=lambda: ["HS256"])
    jwt_secret: str | None = None
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_dev_key_file: Path = RUN_DIR / "dev-jwt-secret"

    workers_enabled: bool = Field(
        default=True, description="Run the outbox relay, consumers and schedulers in-process."
    )

    @property
    def async_database_url(self) -> str:
        return to_async_url(self.database_url)

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.env == "production":
            if not (self.jwt_secret or self.jwt_public_key or self.jwt_jwks_url):
                raise ValueError("production needs JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL")
            if self.jwt_secret and self.jwt_secret.startswith("dev-"):
                raise ValueError("development JWT keys are refused when ENV=production")
            if self.jwt_secret and len(self.jwt_secret) < 32:
                raise ValueError("JWT_SECRET must be at least 32 characters in production")
        return self


def to_async_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def to_plain_url(url: str) -> str:
    """asyncpg.connect() wants a libpq-style URL without the SQLAlchemy driver suffix."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)
