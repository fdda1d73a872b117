"""The real tasks service, SIGKILLed, restarted, through a PostgreSQL outage, then SIGTERMed.

The test plays scoring: it puts alert.raised events on `scoring.snapshots` (with re-deliveries
of the same event, and replays under new event ids, as a rebuilt scoring would send). Real
`uvicorn services.tasks.main:app` processes consume them on this suite's own database and broker:
the first is SIGKILLed mid-backlog, the second sees PostgreSQL stop for five seconds and is then
SIGTERMed once done. The source's truth is the set of alerts: each must end as exactly one
remediation item, announced once in the outbox and published, with no valid event dead-lettered.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from shared.db import make_engine
from shared.devstack import free_port
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.payloads import AlertRaised, RemediationCreated
from shared.settings import REPO_ROOT, Settings
from tests.support.kafka import eventually, read_topic

from .conftest import RestartablePostgres, env_for

ALERTS = 400


def _service(env: dict[str, str], log: Path) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "services.tasks.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def test_tasks_service_killed_restarted_and_starved_of_its_database_loses_and_doubles_nothing(
    own_pg: RestartablePostgres,
    fault_settings: Callable[..., Settings],
    subprocess_env: dict[str, str],
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    settings = fault_settings()
    run = uuid.uuid4().hex[:6]
    await ensure_topics(settings)
    alerts = [f"alr-{run}-{n}" for n in range(ALERTS)]
    events = [
        CloudEvent.of(
            AlertRaised(
                alert_id=a,
                rule="low_score",
                unit_id=f"P21.U{n % 8}",
                indicator="CS1",
                period="2026",
                message="Điểm thấp",
                value=1.0,
                threshold=5.0,
            ),
            source="/cchc-monitor/scoring",
        )
        for n, a in enumerate(alerts)
    ]
    producer = make_producer(settings, "faults-scoring")
    await producer.start()
    try:
        for n, event in enumerate(events):
            await producer.send(
                "scoring.snapshots",
                value=event.value(),
                key=f"P21.U{n % 8}".encode(),
                headers=event.headers(),
            )
        for n, event in enumerate(events[:40]):  # the same events again (at-least-once)
            await producer.send(
                "scoring.snapshots",
                value=event.value(),
                key=f"P21.U{n % 8}".encode(),
                headers=event.headers(),
            )
        for n, event in enumerate(events[40:80]):  # the same alerts under new event ids
            again = CloudEvent(type=event.type, source=event.source, data=event.data)
            await producer.send(
                "scoring.snapshots",
                value=again.value(),
                key=f"P21.U{n % 8}".encode(),
                headers=again.headers(),
            )
        await producer.flush()
    finally:
        await producer.stop()

    engine = make_engine(settings.async_database_url, schema="tasks")

    async def items() -> int:
        try:
            async with engine.connect() as c:
                return int(
                    (
                        await c.execute(
                            text("SELECT count(*) FROM tasks.items WHERE alert_id LIKE :r"),
                            {"r": f"alr-{run}-%"},
                        )
                    ).scalar_one()
                )
        except Exception:
            await engine.dispose()
            return -1

    env = env_for(settings, subprocess_env, SERVICE_NAME="tasks", CONSUMER_BATCH_SIZE="20")
    first = _service(env, tmp_path / "tasks-1.log")
    second = None
    try:
        assert await eventually(lambda: _ge(items, 20), timeout=90, interval=0.05)
        first.kill()  # SIGKILL mid-backlog
        first.wait(10)
        killed_at = await items()
        second = _service(env, tmp_path / "tasks-2.log")
        assert await eventually(lambda: _ge(items, killed_at + 20), timeout=90, interval=0.05)
        await asyncio.to_thread(own_pg.stop, "fast")  # the database away under a live service
        await asyncio.sleep(5)
        await asyncio.to_thread(own_pg.start)
        await engine.dispose()
        assert await eventually(lambda: _ge(items, ALERTS), timeout=120), await items()

        async def published() -> bool:
            async with engine.connect() as c:
                left = (
                    await c.execute(
                        text("SELECT count(*) FROM tasks.outbox WHERE published_at IS NULL")
                    )
                ).scalar_one()
            return bool(left == 0)

        assert await eventually(published, timeout=60)
        await asyncio.sleep(2)  # anything late would show as a double
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 40)
        # uvicorn re-raises SIGTERM after its graceful shutdown; the app's own shutdown ran.
        log = (tmp_path / "tasks-2.log").read_text()
        assert second.returncode in (0, -signal.SIGTERM) and '"service stopped"' in log, log[-3000:]
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()

    async with engine.connect() as c:
        stored = (
            await c.execute(
                text(
                    "SELECT count(*), count(DISTINCT alert_id) FROM tasks.items WHERE alert_id LIKE :r"
                ),
                {"r": f"alr-{run}-%"},
            )
        ).one()
        announced = list(
            (
                await c.execute(
                    text(
                        "SELECT o.event_id FROM tasks.outbox o JOIN tasks.items i ON o.subject = i.id "
                        "WHERE i.alert_id LIKE :r AND o.type = :t"
                    ),
                    {"r": f"alr-{run}-%", "t": RemediationCreated.event_type},
                )
            ).scalars()
        )
        processed = set(
            (
                await c.execute(
                    text(
                        "SELECT event_id FROM tasks.processed_events WHERE consumer = 'tasks.alerts' "
                        "AND event_id = ANY(:ids)"
                    ),
                    {"ids": [e.id for e in events]},
                )
            ).scalars()
        )
    await engine.dispose()
    on_topic = {
        m.headers["ce_id"].decode()
        for m in await read_topic(settings.kafka_bootstrap_servers, "tasks.remediation")
    }
    dead = [
        m
        for m in await read_topic(
            settings.kafka_bootstrap_servers, "scoring.snapshots.dlq", timeout=10
        )
        if run.encode() in (m.value or b"")
    ]
    record_property(
        "service_kills",
        {
            "alerts": ALERTS,
            "items": stored[0],
            "distinct": stored[1],
            "announced": len(announced),
            "killed_at": killed_at,
            "dead_lettered": len(dead),
        },
    )
    assert tuple(stored) == (ALERTS, ALERTS)  # one item per alert: nothing lost, nothing doubled
    assert processed == {e.id for e in events}  # every event id handled
    assert len(announced) == len(set(announced)) == ALERTS  # one RemediationCreated per item
    assert set(announced) <= on_topic  # and every one of them published
    assert dead == []  # no valid event dead-lettered through the outage


async def _ge(count: Callable[[], Any], n: int) -> bool:
    return bool(await count() >= n)
