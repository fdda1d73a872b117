"""PostgreSQL goes away while a consumer works through a backlog (issue 16, item 1).

A real consumer process (tests/support/spine.py: the shared IdempotentConsumer, whose handler
writes one row per handled event in a table with no unique key, so double handling shows) eats
a backlog with two poison messages and thirty re-deliveries in it. PostgreSQL (this suite's own)
is stopped for seconds, then the consumer is SIGKILLed mid-batch and a second instance takes
over, which is finally SIGTERMed. Every valid event must be handled exactly once, and the DLQ
must hold the two poison messages and nothing else.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared.db import make_engine
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.payloads import RemediationCreated
from shared.settings import REPO_ROOT, Settings
from tests.support.kafka import eventually, read_topic
from tests.support.spine import CREATE_LOG

from .conftest import RestartablePostgres, env_for

SOURCE = "/cchc-monitor/faults"
VALID = 300


def _spawn(env: dict[str, str], topic: str, group: str, name: str, log: Path) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.spine", topic, group, name],
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_postgres_outage_dead_letters_no_valid_event_and_kills_lose_nothing(
    own_pg: RestartablePostgres,
    fault_settings: Callable[..., Settings],
    subprocess_env: dict[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    settings = fault_settings()
    topic = f"faults.pg.{uuid.uuid4().hex[:8]}"
    group = f"faults-{topic}"
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    engine = make_engine(settings.async_database_url, schema="tasks")
    async with engine.begin() as c:
        await c.execute(text(CREATE_LOG))

    sent: list[str] = []
    producer = make_producer(settings, "faults-pg")
    await producer.start()
    try:
        events = [
            CloudEvent.of(
                RemediationCreated(item_id=f"i{n}", unit_id=f"U{n % 8}", status="not_started"),
                source=SOURCE,
            )
            for n in range(VALID)
        ]
        for n, event in enumerate(events):
            await producer.send(
                topic, value=event.value(), key=f"U{n % 8}".encode(), headers=event.headers()
            )
            sent.append(event.id)
            if n == 100:  # poison 1: not a CloudEvent at all
                await producer.send(topic, value=b"\xff\x00", key=b"U4")
            if n == 200:  # poison 2: a known type whose payload fails validation
                bad = CloudEvent(
                    type=RemediationCreated.event_type, source=SOURCE, data={"item_id": 1}
                )
                await producer.send(topic, value=bad.value(), key=b"U0", headers=bad.headers())
        for n, event in enumerate(events[:30]):  # at-least-once: re-deliveries
            await producer.send(
                topic, value=event.value(), key=f"U{n % 8}".encode(), headers=event.headers()
            )
        await producer.flush()
    finally:
        await producer.stop()

    async def handled() -> tuple[int, int]:
        async with engine.connect() as c:
            row = (
                await c.execute(
                    text(
                        "SELECT count(*), count(DISTINCT event_id) FROM public.spine_log "
                        "WHERE topic = :t"
                    ),
                    {"t": topic},
                )
            ).one()
        return int(row[0]), int(row[1])

    env = env_for(settings, subprocess_env, CONSUMER_BATCH_SIZE="20")
    first = _spawn(env, topic, group, "a", tmp_path / "a.log")
    second = None
    try:
        assert await eventually(lambda: _at_least(handled, 40), timeout=60)
        # PostgreSQL away for six seconds mid-backlog (every session cut, socket gone).
        started = time.monotonic()
        await asyncio.to_thread(own_pg.stop, "fast")
        await asyncio.sleep(6)
        await asyncio.to_thread(own_pg.start)
        outage = time.monotonic() - started
        await engine.dispose()  # our own pooled connections died with the server
        assert first.poll() is None, "the consumer process died with the database"
        assert await eventually(lambda: _at_least(handled, 150), timeout=90)
        first.kill()  # SIGKILL mid-batch: no shutdown code runs
        first.wait(10)
        second = _spawn(env, topic, group, "b", tmp_path / "b.log")
        assert await eventually(lambda: _at_least(handled, VALID), timeout=120), await handled()
        await asyncio.sleep(1.5)  # anything late would show as a double
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 40)
        assert second.returncode == 0
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
    logs = (tmp_path / "a.log").read_text()
    total, distinct = await handled()
    async with engine.connect() as c:
        ids = set(
            (
                await c.execute(
                    text("SELECT event_id FROM public.spine_log WHERE topic = :t"), {"t": topic}
                )
            ).scalars()
        )
        processed = (
            await c.execute(
                text("SELECT count(*) FROM tasks.processed_events WHERE consumer = :g"),
                {"g": group},
            )
        ).scalar_one()
    await engine.dispose()
    dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", timeout=20)
    record_property(
        "pg_outage",
        {
            "valid": VALID,
            "handled": total,
            "distinct": distinct,
            "dead_lettered": len(dead),
            "outage_s": round(outage, 1),
        },
    )
    assert "holding the event" in logs  # the outage was felt, and held, by the consumer
    assert ids == set(sent)  # nothing lost
    assert total == distinct == processed == VALID  # nothing doubled (30 re-deliveries included)
    assert len(dead) == 2  # only the poison, no valid event
    reasons = sorted(m.headers["dlq_reason"].decode() for m in dead)
    assert "invalid" in reasons[0] and "missing CloudEvents headers" in reasons[1], reasons


async def _at_least(count: Callable[[], Any], n: int) -> bool:
    total, _ = await count()
    return bool(total >= n)


async def test_stop_while_an_event_is_held_leaves_it_for_the_next_instance(
    own_pg: RestartablePostgres, fault_settings: Callable[..., Settings]
) -> None:
    """SIGTERM (stop()) during an outage: the held event is neither committed nor lost."""
    from prometheus_client import REGISTRY
    from sqlalchemy.ext.asyncio import AsyncSession

    from services.tasks.store.models import processed_events_table
    from shared.db import make_sessionmaker
    from shared.events.consumer import IdempotentConsumer
    from shared.events.payloads import Payload

    settings = fault_settings()
    topic = f"faults.hold.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    engine = make_engine(settings.async_database_url, schema="tasks")
    async with engine.begin() as c:
        await c.execute(text(CREATE_LOG))
    producer = make_producer(settings, "faults-hold")
    await producer.start()

    async def handle(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        await session.execute(
            text("INSERT INTO public.spine_log (topic, instance, event_id) VALUES (:t, 'x', :e)"),
            {"t": topic, "e": event.id},
        )

    def consumer() -> IdempotentConsumer:
        return IdempotentConsumer(
            name=f"faults-{topic}",
            topics=[topic],
            sessions=make_sessionmaker(engine),
            handlers={RemediationCreated.event_type: handle},
            processed_table=processed_events_table,
            producer=producer,
            settings=settings,
        )

    async def handled() -> int:
        async with engine.connect() as c:
            return int(
                (
                    await c.execute(
                        text("SELECT count(*) FROM public.spine_log WHERE topic = :t"), {"t": topic}
                    )
                ).scalar_one()
            )

    first = consumer()
    task = asyncio.create_task(first.run())
    try:
        await asyncio.to_thread(own_pg.stop, "fast")
        event = CloudEvent.of(
            RemediationCreated(item_id="held", unit_id="U", status="not_started"), source=SOURCE
        )
        await producer.send_and_wait(topic, value=event.value(), key=b"U", headers=event.headers())

        async def held() -> bool:  # joined, fetched the event, could not reach the database
            value = REGISTRY.get_sample_value(
                "events_consumed_total", {"consumer": first.name, "outcome": "held"}
            )
            return bool(value and value >= 2)

        assert await eventually(held, timeout=40)
        first.stop()
        await asyncio.wait_for(task, 30)  # stops promptly although the event is still held
        await asyncio.to_thread(own_pg.start)
        await engine.dispose()
        assert await handled() == 0
        second = consumer()
        task = asyncio.create_task(second.run())
        assert await eventually(lambda: _at_least(_pair(handled), 1), timeout=60)
        await asyncio.sleep(1)
        assert await handled() == 1  # handled once, by the next instance
        second.stop()
        await asyncio.wait_for(task, 30)
    finally:
        if not task.done():
            task.cancel()
        await producer.stop()
        await engine.dispose()
    dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", timeout=5)
    assert dead == []


def _pair(count: Callable[[], Any]) -> Callable[[], Any]:
    async def both() -> tuple[int, int]:
        n = await count()
        return n, n

    return both
