"""Consumer catch-up: a backlog of SnapshotUpdated events (what tasks finds waiting after scoring
worked through a province while it was away), applied with tasks' real handler against the real
PostgreSQL, batch by batch together (one transaction per partition batch) and event by event
(one transaction per event, the careful path), in the same run. The ratio is what the fast
path buys; both write the same rows.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiokafka import ConsumerRecord
from sqlalchemy import text

from services.tasks.events.scores import make_score_handlers
from services.tasks.store.models import processed_events_table
from shared.db import make_engine, make_sessionmaker
from shared.devstack import Postgres
from shared.events.consumer import IdempotentConsumer
from shared.events.envelope import CloudEvent
from shared.events.payloads import SnapshotUpdated
from shared.migrate import upgrade
from shared.settings import Settings, to_async_url

N = 6_000
BATCH = 200  # the default consumer_batch_size


def records(tag: str) -> list[ConsumerRecord[Any, Any]]:
    out: list[ConsumerRecord[Any, Any]] = []
    for i in range(N):
        ev = CloudEvent.of(
            SnapshotUpdated(unit_id=f"{tag}.U{i % 1500}", period="202611", profile="766@2",
                            version=1 + i // 1500, total=70.0 + i % 30, max_total=100.0,
                            rank=1 + i % 1500),
            source="/cchc-monitor/scoring",
        )  # fmt: skip
        out.append(ConsumerRecord("scoring.snapshots", 0, i, 0, 0, None, ev.value(), None,
                                  0, 0, list(ev.headers())))  # fmt: skip
    return out


async def main() -> None:
    pg = Postgres.start()
    name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
    try:
        url = await pg.create_database(name)
        await asyncio.to_thread(upgrade, "tasks", url)
        settings = Settings(database_url=to_async_url(url))
        engine = make_engine(settings.async_database_url, schema="tasks")
        sessions = make_sessionmaker(engine)
        consumer = IdempotentConsumer(
            name="bench", topics=["scoring.snapshots"], handlers=make_score_handlers(),
            sessions=sessions, processed_table=processed_events_table,
            producer=None,  # nothing is dead-lettered here
            settings=settings,
        )  # fmt: skip
        one = records("A")
        started = time.perf_counter()
        for r in one:
            await consumer.process(r)
        single = N / (time.perf_counter() - started)
        together = records("B")
        started = time.perf_counter()
        for i in range(0, N, BATCH):
            assert await consumer.process_together(together[i : i + BATCH])
        batched = N / (time.perf_counter() - started)
        async with engine.connect() as c:
            rows: dict[str, int] = dict(
                (
                    await c.execute(
                        text("SELECT left(unit_id, 1), count(*) FROM tasks.unit_scores GROUP BY 1")
                    )
                ).all()
            )
        assert rows == {"A": 1500, "B": 1500}, rows  # the same result both ways
        await engine.dispose()
        print(f"consumer catch-up, {N:,} SnapshotUpdated events, tasks' handler:")
        print(f"  event by event      {single:8,.0f} events/s")
        print(f"  {BATCH} together        {batched:8,.0f} events/s   ({batched / single:.1f}×)")
    finally:
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
