"""Outbox relay throughput against the raw producer on the same broker, in the same run.

The relay reads rows in id order, sends them, and marks them published; the baseline sends the
same payloads straight from memory with the same producer settings. The ratio is the price of
"nothing lost" on the publishing side.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text

from services.tasks.store.models import outbox_table
from shared.db import make_engine
from shared.devstack import Broker, Postgres
from shared.events.kafka import ensure_topics, make_producer
from shared.events.outbox import OutboxRelay, outbox_row
from shared.events.payloads import RemediationCreated
from shared.migrate import upgrade
from shared.settings import Settings, to_async_url

N = 50_000


async def main() -> None:
    pg = Postgres.start()
    broker = Broker.start()
    name = f"cchc_bench_{uuid.uuid4().hex[:8]}"
    try:
        url = await pg.create_database(name)
        await asyncio.to_thread(upgrade, "tasks", url)
        settings = Settings(
            database_url=to_async_url(url), kafka_bootstrap_servers=broker.bootstrap
        )
        await ensure_topics(settings)
        payloads = [
            RemediationCreated(item_id=str(i), unit_id=f"U{i % 50}", status="not_started")
            for i in range(N)
        ]

        producer = make_producer(settings, "bench-baseline")
        await producer.start()
        started = time.perf_counter()
        futures = []
        for p in payloads:
            futures.append(
                await producer.send(
                    "tasks.remediation", value=p.model_dump_json().encode(), key=p.unit_id.encode()
                )
            )
        await asyncio.gather(*futures)
        baseline = N / (time.perf_counter() - started)
        await producer.stop()

        engine = make_engine(settings.async_database_url, schema="tasks")
        rows = [outbox_row(p, source="/bench", key=p.unit_id) for p in payloads]
        started = time.perf_counter()
        async with engine.begin() as conn:
            for i in range(0, N, 5000):
                await conn.execute(insert(outbox_table), rows[i : i + 5000])
        write_rate = N / (time.perf_counter() - started)

        relay = OutboxRelay(
            engine,
            outbox_table,
            lambda: make_producer(settings, "bench-relay"),
            service="bench",
            batch_size=2000,
            poll_interval=0.01,
        )
        started = time.perf_counter()
        task = asyncio.create_task(relay.run())
        while True:
            async with engine.connect() as conn:
                left = (
                    await conn.execute(
                        text("SELECT count(*) FROM tasks.outbox WHERE published_at IS NULL")
                    )
                ).scalar_one()
            if left == 0:
                break
            await asyncio.sleep(0.05)
        relay_rate = N / (time.perf_counter() - started)
        relay.stop()
        await task
        await engine.dispose()
        print(f"events                         {N}")
        print(f"raw producer (baseline)        {baseline:10.0f} events/s")
        print(f"outbox insert (in one tx)      {write_rate:10.0f} events/s")
        print(f"outbox relay publish + mark    {relay_rate:10.0f} events/s")
        print(f"relay / raw producer           {relay_rate / baseline:10.2f}")
    finally:
        await pg.drop_database(name)
        broker.stop()
        pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
