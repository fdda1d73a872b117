"""Settings of the ingest service only (env vars prefixed INGEST_)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    scheduler_enabled: bool = True
    scheduler_tick_s: float = 5.0
    breaker_threshold: int = 3  # consecutive failed runs before a source is marked degraded
    breaker_cooldown_s: float = 300.0
    retry_attempts: int = 6
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    prefetch_pages: int = 2
    parse_workers: int = 0  # worker processes decoding/normalising pages (0 = in-process)
    db_pool_size: int = 6  # page writes, run ends, API reads (never a run's lock)
    max_runs: int = 4  # runs at once; each holds one connection of its own (the lock pool)
    start_wait_s: float = 10.0  # a manual sync waits this long for a free run slot, then 503
    stall_s: float = 300.0  # a run with no committed page for this long: /readyz says wedged
    pool_probe_s: float = 2.0  # /readyz: no free connection within this long = pool exhausted
