"""The broker is SIGKILLed and restarted empty while events flow (issue 16, item 3).

An outbox relay (with a live producer whose metadata describes the old broker) and a real
consumer process (tests/support/spine.py) run through a broker restart on the same address; the
restarted broker is memory-only, so it comes back without topics. The relay must re-create the
topics with their dead-letter topics before publishing again (never a broker auto-creation
guess), and the consumer must pick the new topics up within seconds. Every event written after
the restart is handled exactly once, as is everything before it.
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

from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import insert, text

from services.tasks.store.models import outbox_table
from shared.db import make_engine
from shared.events.kafka import make_producer
from shared.events.outbox import OutboxRelay, outbox_row
from shared.events.payloads import RemediationCreated
from shared.settings import REPO_ROOT, Settings
from tests.support.kafka import eventually
from tests.support.spine import CREATE_LOG

from .conftest import RestartableBroker, env_for

TOPIC = "tasks.remediation"
PER_PHASE = 150


async def test_broker_restart_loses_nothing_and_topics_come_back_as_configured(
    own_broker: RestartableBroker,
    fault_settings: Callable[..., Settings],
    subprocess_env: dict[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    settings = fault_settings(kafka_topic_partitions=6)
    run = uuid.uuid4().hex[:6]
    group = f"faults-broker-{run}"
    engine = make_engine(settings.async_database_url, schema="tasks")
    async with engine.begin() as c:
        await c.execute(text(CREATE_LOG))
        # Only this test's events in the outbox the relay reads.
        await c.execute(
            text("UPDATE tasks.outbox SET published_at = now() WHERE published_at IS NULL")
        )
    written: list[str] = []

    async def write(n: int, start: int) -> None:
        rows = []
        for seq in range(start, start + n):
            key = f"{run}-K{seq % 8}"
            payload = RemediationCreated(item_id=str(seq), unit_id=key, status="not_started")
            rows.append(outbox_row(payload, source="/cchc-monitor/faults", key=key))
        async with engine.begin() as c:
            await c.execute(insert(outbox_table), rows)
        written.extend(r["event_id"] for r in rows)

    async def handled() -> tuple[int, int]:
        async with engine.connect() as c:
            row = (
                await c.execute(
                    text(
                        "SELECT count(*), count(DISTINCT event_id) FROM public.spine_log WHERE topic = :t"
                        " AND instance LIKE :r"
                    ),
                    {"t": TOPIC, "r": f"{run}%"},
                )
            ).one()
        return int(row[0]), int(row[1])

    relay = OutboxRelay(
        engine,
        outbox_table,
        lambda: make_producer(settings, "faults-broker"),
        service="faults",
        poll_interval=0.05,
        send_timeout=5,
        settings=settings,
    )
    relay_task = asyncio.create_task(relay.run())
    env = env_for(settings, subprocess_env)
    consumer = _spawn(env, group, f"{run}-c", tmp_path / "c.log")
    try:
        await write(PER_PHASE, 0)
        assert await eventually(lambda: _at_least(handled, PER_PHASE), timeout=90), await handled()
        assert relay.producer is not None  # a live producer that knows the old broker

        own_broker.restart()  # SIGKILL, then an empty broker on the same address
        restarted = time.monotonic()
        await write(PER_PHASE, PER_PHASE)
        assert await eventually(lambda: _at_least(handled, 2 * PER_PHASE), timeout=120), (
            await handled()
        )
        recovered = time.monotonic() - restarted
        await asyncio.sleep(1.5)  # a late double would show
        total, distinct = await handled()
    finally:
        relay.stop()
        await asyncio.wait_for(relay_task, 30)
        consumer.send_signal(signal.SIGTERM)
        await asyncio.to_thread(consumer.wait, 40)
    async with engine.connect() as c:
        ids = set(
            (
                await c.execute(
                    text(
                        "SELECT event_id FROM public.spine_log WHERE topic = :t AND instance LIKE :r"
                    ),
                    {"t": TOPIC, "r": f"{run}%"},
                )
            ).scalars()
        )
    await engine.dispose()
    admin = AIOKafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
    await admin.start()
    try:
        described = {
            d["topic"]: len(d["partitions"])
            for d in await admin.describe_topics([TOPIC, f"{TOPIC}.dlq"])
        }
    finally:
        await admin.close()
    record_property(
        "broker_restart",
        {
            "written": len(written),
            "handled": total,
            "distinct": distinct,
            "recovered_s": round(recovered, 1),
            "partitions": described,
        },
    )
    assert consumer.returncode == 0
    assert ids == set(written)  # nothing lost, before or after the restart
    assert total == distinct == 2 * PER_PHASE  # nothing doubled
    assert described[f"{TOPIC}.dlq"] == 1  # ours (auto-creation would give 4, or nothing)
    assert described[TOPIC] >= 4
    assert recovered < 60  # the consumer did not stall for minutes


def _spawn(env: dict[str, str], group: str, instance: str, log: Path) -> Any:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.spine", TOPIC, group, instance],
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _at_least(count: Callable[[], Any], n: int) -> bool:
    total, _ = await count()
    return bool(total >= n)
