"""Settings of the tasks service only (env vars `TASKS_*`; defaults suit `make run`).

Secrets (SMTP password, VAPID private key, S3 keys) come only from the environment.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import RUN_DIR


class TasksSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKS_", extra="ignore")

    # Idempotency-Key: how long a key replays its first answer (the scheduler purges after)
    idempotency_ttl_hours: int = 24

    # evidence files
    evidence_max_bytes: int = 20 * 1024 * 1024
    evidence_max_files: int = 10
    evidence_chunk_bytes: int = 1024 * 1024
    # a virus scanner run on each upload: the file path is appended; exit 0 = clean, 1 = infected
    evidence_scan_command: str | None = None
    # S3-compatible store (MinIO): when the bucket is set, files go there instead of PostgreSQL
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"

    # notification delivery
    delivery_interval_s: float = 5.0
    delivery_max_attempts: int = 5
    delivery_backoff_s: float = 30.0
    delivery_timeout_s: float = 10.0
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_sender: str = "cchc-monitor@localhost"
    vapid_private_key: str | None = None  # PEM or base64url raw key
    vapid_subject: str = "mailto:cchc-monitor@localhost"
    public_base_url: str = "http://127.0.0.1:8003"

    # the leaders' morning digest: local time (Asia/Ho_Chi_Minh), the audience it goes to
    # (leaders read with the viewer role) and the province it summarises
    digest_time: str = "07:00"
    digest_audience: str = "role:viewer"
    province_id: str = "P21"


@lru_cache(maxsize=1)
def tasks_settings() -> TasksSettings:
    return TasksSettings()


def dev_vapid_key(path: Path = RUN_DIR / "dev-vapid.pem") -> str:
    """A per-checkout development VAPID key (PEM), created on first use, never committed:
    Web Push works under `make run` without configuration."""
    if path.exists():
        return path.read_text()
    from py_vapid import Vapid02

    key = Vapid02()
    key.generate_keys()
    pem: str = key.private_pem().decode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pem)
    return pem
