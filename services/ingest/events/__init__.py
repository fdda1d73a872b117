"""What the ingest service consumes (handlers) and runs in the background."""

from __future__ import annotations

from shared.app import Runtime, Worker
from shared.events.consumer import IdempotentConsumer


def consumers(runtime: Runtime) -> list[IdempotentConsumer]:
    return []  # ingest only produces


def workers(runtime: Runtime) -> list[Worker]:
    from services.ingest.runtime import engine
    from services.ingest.settings import IngestSettings
    from services.ingest.sync.health import SourceHealthSampler
    from services.ingest.sync.scheduler import Scheduler

    ingest: IngestSettings = runtime.extras.get("ingest_settings") or IngestSettings()
    found: list[Worker] = []
    if runtime.settings.metrics_sample_interval_s > 0:
        found.append(
            SourceHealthSampler(engine(runtime).pool, runtime.settings.metrics_sample_interval_s)
        )
    if ingest.scheduler_enabled:
        found.append(Scheduler(engine(runtime), tick_s=ingest.scheduler_tick_s))
    return found
