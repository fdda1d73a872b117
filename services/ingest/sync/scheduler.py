"""Background worker: starts due incremental runs and resumes runs a dead process left."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from services.ingest.sync.engine import RunInProgress, SyncEngine

log = logging.getLogger("cchc.ingest.scheduler")


class Scheduler:
    def __init__(self, engine: SyncEngine, tick_s: float = 5.0) -> None:
        self.engine = engine
        self.tick_s = tick_s
        self._stopping = asyncio.Event()

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

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.tick_s)
        await self.engine.stop()
        await self.engine.close()

    def stop(self) -> None:
        self._stopping.set()
