"""Two outbox relays, and the leader's lock vanishes (issue 16, item 2).

Two relay instances (each its own engine, sessions and producer, as two service replicas) publish
one outbox while a writer keeps adding events. The leader's lock session is terminated
(pg_terminate_backend), then this suite's own PostgreSQL is restarted. Every event must reach the
topic; the only repeats allowed are the one batch in flight at each fault (the next leader sends
it again, consumers deduplicate); per key, events first appear in the order they were written.
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, text

from services.tasks.store.models import outbox_table
from shared.db import make_engine
from shared.events.kafka import make_producer
from shared.events.outbox import OutboxRelay, backlog, outbox_row
from shared.events.payloads import RemediationCreated
from shared.settings import Settings
from tests.support.kafka import eventually, read_topic

from .conftest import RestartablePostgres

BATCH = 50
KEYS = 8


async def test_lost_leadership_stops_publishing_and_nothing_is_published_twice(
    own_pg: RestartablePostgres,
    fault_settings: Callable[..., Settings],
    record_property: Callable[[str, object], None],
) -> None:
    settings = fault_settings()
    run = uuid.uuid4().hex[:6]
    writer_engine = make_engine(settings.async_database_url, schema="tasks")
    engines = [make_engine(settings.async_database_url, schema="tasks") for _ in range(2)]
    relays = [
        OutboxRelay(
            engine,
            outbox_table,
            functools.partial(make_producer, settings, f"faults-relay-{n}"),
            service="faults",
            poll_interval=0.05,
            batch_size=BATCH,
            send_timeout=10,
            settings=settings,
        )
        for n, engine in enumerate(engines)
    ]
    written: list[str] = []
    writing = asyncio.Event()

    async def writer() -> None:
        seq = 0
        while not writing.is_set():
            rows = []
            for _ in range(20):
                key = f"{run}-K{seq % KEYS}"
                payload = RemediationCreated(item_id=str(seq), unit_id=key, status="not_started")
                rows.append(outbox_row(payload, source="/cchc-monitor/faults", key=key))
                seq += 1
            try:
                async with writer_engine.begin() as c:
                    await c.execute(insert(outbox_table), rows)
                written.extend(r["event_id"] for r in rows)
            except Exception:
                await writer_engine.dispose()  # the database is restarting: try again
                seq -= len(rows)
            await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(writer()), asyncio.create_task(relays[0].run())]
    try:
        assert await eventually(lambda: _true(relays[0].batches_published > 0), timeout=30)
        tasks.append(asyncio.create_task(relays[1].run()))
        await asyncio.sleep(2)
        assert relays[1].batches_published == 0  # the standby does not publish

        # Fault 1: the leader's lock session is terminated; the pool's other sessions live on.
        async with writer_engine.connect() as c:
            pid = (
                await c.execute(
                    text("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")
                )
            ).scalar_one()
            await c.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await asyncio.sleep(4)

        # Fault 2: PostgreSQL restarts (every session and the lock itself gone).
        await asyncio.to_thread(own_pg.stop, "fast")
        await asyncio.sleep(2)
        await asyncio.to_thread(own_pg.start)
        await asyncio.sleep(4)
        writing.set()
        await tasks[0]
        assert await eventually(
            lambda: _true_async(backlog(writer_engine, outbox_table), 0), timeout=60
        )
    finally:
        writing.set()
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        for engine in [writer_engine, *engines]:
            await engine.dispose()

    messages = [
        m
        for m in await read_topic(settings.kafka_bootstrap_servers, "tasks.remediation")
        if (m.key or b"").startswith(run.encode())
    ]
    ids = [m.headers["ce_id"].decode() for m in messages]
    repeats = sum(n - 1 for n in Counter(ids).values())
    record_property(
        "relay_leadership",
        {
            "written": len(written),
            "on_topic": len(ids),
            "distinct": len(set(ids)),
            "repeats": repeats,
            "batches": [r.batches_published for r in relays],
        },
    )
    assert set(ids) == set(written)  # nothing lost
    assert repeats <= 2 * BATCH, repeats  # at most the batch in flight at each of the 2 faults
    # Per key, first appearances come in the order the events were written.
    seen: set[str] = set()
    order: dict[str, list[int]] = {}
    for m, event_id in zip(messages, ids, strict=True):
        # kept above by its key; a remediation event always has a body
        assert m.key is not None and m.value is not None
        if event_id in seen:
            continue
        seen.add(event_id)
        order.setdefault(m.key.decode(), []).append(int(json.loads(m.value)["item_id"]))
    assert len(order) == KEYS
    for key, seqs in order.items():
        assert seqs == sorted(seqs), key


async def _true(value: bool) -> bool:
    return value


async def _true_async(awaitable: Any, expected: int) -> bool:
    return bool(await awaitable == expected)
