"""What the ingest service consumes (handlers) and runs in the background."""

from __future__ import annotations

from shared.app import Runtime, Worker
from shared.events.consumer import IdempotentConsumer


def consumers(runtime: Runtime) -> list[IdempotentConsumer]:
    return []  # ingest only produces


def workers(runtime: Runtime) -> list[Worker]:
    from services.ingest.runtime import engine
    from services.ingest.settings import IngestSettings
    from services.ingest.sync.scheduler import Scheduler

    ingest: IngestSettings = runtime.extras.get("ingest_settings") or IngestSettings()
    if not ingest.scheduler_enabled:
        return []
    return [Scheduler(engine(runtime), tick_s=ingest.scheduler_tick_s)]
