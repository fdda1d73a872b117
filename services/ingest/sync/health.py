"""Source health for `/metrics`: the circuit breaker's state and how long since each source last
synced successfully, read from the sources table every interval. The breaker itself lives in the
sync engine and the database, so every instance reports the same state whichever ran the sync."""

from __future__ import annotations

import asyncpg

from services.ingest.sync.metrics import SOURCE_DEGRADED, SOURCE_FRESHNESS
from shared.workers import PeriodicWorker

SCHEMA = "ingest"


class SourceHealthSampler(PeriodicWorker):
    name = "source-health"

    def __init__(self, pool: asyncpg.Pool, interval: float) -> None:
        super().__init__(interval)
        self.pool = pool

    async def tick(self) -> dict[str, bool]:
        rows = await self.pool.fetch(
            f"""SELECT s.id,
                       s.health = 'degraded' AND coalesce(s.degraded_until > now(), true)
                           AS degraded,
                       extract(epoch FROM now() - max(r.finished_at)) AS age
                FROM {SCHEMA}.sources s
                LEFT JOIN {SCHEMA}.runs r ON r.source_id = s.id AND r.status = 'succeeded'
                GROUP BY s.id"""
        )
        for row in rows:
            SOURCE_DEGRADED.labels(row["id"]).set(1 if row["degraded"] else 0)
            if row["age"] is not None:
                SOURCE_FRESHNESS.labels(row["id"]).set(float(row["age"]))
        return {row["id"]: bool(row["degraded"]) for row in rows}
