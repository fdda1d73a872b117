"""A minimal consumer process for infrastructure tests (SIGTERM, several instances).

It runs the real shared IdempotentConsumer against a test topic; its handler appends one row per
handled event to `public.spine_log` (no unique key, so double handling would show) after a short
pause, so a SIGTERM lands mid-batch.

    python -m tests.support.spine TOPIC GROUP INSTANCE
"""

from __future__ import annotations

import asyncio
import signal
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.store.models import processed_events_table
from shared.db import make_engine, make_sessionmaker
from shared.events.consumer import IdempotentConsumer
from shared.events.envelope import CloudEvent
from shared.events.kafka import make_producer
from shared.events.payloads import Payload, RemediationCreated
from shared.logging import configure_logging
from shared.settings import Settings

CREATE_LOG = (
    "CREATE TABLE IF NOT EXISTS public.spine_log (topic text, instance text, event_id text, "
    "at timestamptz DEFAULT now())"
)


async def main(topic: str, group: str, instance: str) -> None:
    settings = Settings()
    configure_logging(f"spine-{instance}", "INFO")
    engine = make_engine(settings.async_database_url, schema="tasks")
    sessions = make_sessionmaker(engine)
    producer = make_producer(settings, f"spine-{instance}")
    await producer.start()

    async def handle(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        await asyncio.sleep(0.02)
        await session.execute(
            text("INSERT INTO public.spine_log (topic, instance, event_id) VALUES (:t, :i, :e)"),
            {"t": topic, "i": instance, "e": event.id},
        )

    consumer = IdempotentConsumer(
        name=group,
        topics=[topic],
        handlers={RemediationCreated.event_type: handle},
        sessions=sessions,
        processed_table=processed_events_table,
        producer=producer,
        settings=settings,
    )
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, consumer.stop)
    print("started", flush=True)
    await consumer.run()
    await producer.stop()
    await engine.dispose()
    print("stopped cleanly", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
