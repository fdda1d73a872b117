"""Background worker: starts due incremental runs and resumes interrupted runs.

A run interrupted by a stop (SIGTERM: the run ends `partial` or `failed` and keeps its
checkpoint) or by a dead process (it stays `running`) is resumed from its checkpoint by the
first tick after the service starts again, whatever the source's schedule; later ticks start
what is due. A full run slot table (EngineBusy) ends the tick: the rest waits for the next one.
"""

from __future__ import annotations

import logging

from services.ingest.connectors.base import Feed
from services.ingest.store.pages import SCHEMA
from services.ingest.sync.engine import EngineBusy, RunInProgress, SyncEngine
from shared.workers import PeriodicWorker

log = logging.getLogger("cchc.ingest.scheduler")


class Scheduler(PeriodicWorker):
    name = "ingest scheduler"

    def __init__(self, engine: SyncEngine, tick_s: float = 5.0) -> None:
        super().__init__(tick_s)
        self.engine = engine
        self._resumed = False

    async def tick(self) -> list[str]:
        pairs = await self.engine.due()
        if not self._resumed:
            interrupted = await self.interrupted()
            pairs = interrupted + [p for p in pairs if p not in interrupted]
        started = []
        for source_id, feed in pairs:
            try:
                started.append(
                    await self.engine.start(source_id, feed, trigger="schedule", wait_s=0)
                )
            except RunInProgress:
                continue
            except EngineBusy:
                break
            except Exception:
                log.exception("could not start a scheduled run", extra={"source": source_id})
        else:
            self._resumed = True  # every interrupted walk was started (or is running elsewhere)
        return started

    async def interrupted(self) -> list[tuple[str, Feed]]:
        """(source, feed) pairs whose walk stopped before its end: a checkpoint is left."""
        rows = await self.engine.pool.fetch(f"""
            SELECT c.source_id, c.feed FROM {SCHEMA}.checkpoints c
            JOIN {SCHEMA}.sources s ON s.id = c.source_id
            WHERE s.enabled AND c.feed = ANY(s.feeds)
              AND (s.degraded_until IS NULL OR s.degraded_until < now())
            ORDER BY c.source_id, c.feed""")  # fmt: skip
        return [(r["source_id"], r["feed"]) for r in rows]

    async def close(self) -> None:
        await self.engine.stop()
        await self.engine.close()
