"""Background worker: starts due incremental runs and resumes runs a dead process left."""

from __future__ import annotations

import logging

from services.ingest.sync.engine import RunInProgress, SyncEngine
from shared.workers import PeriodicWorker

log = logging.getLogger("cchc.ingest.scheduler")


class Scheduler(PeriodicWorker):
    name = "ingest scheduler"

    def __init__(self, engine: SyncEngine, tick_s: float = 5.0) -> None:
        super().__init__(tick_s)
        self.engine = engine

    async def tick(self) -> list[str]:
        started = []
        for source_id, feed in await self.engine.due():
            try:
                started.append(await self.engine.start(source_id, feed, trigger="schedule"))
            except RunInProgress:
                continue
            except Exception:
                log.exception("could not start a scheduled run", extra={"source": source_id})
        return started

    async def close(self) -> None:
        await self.engine.stop()
        await self.engine.close()
