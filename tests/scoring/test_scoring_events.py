"""Through the real broker: ingest facts in, debounced recompute, SnapshotUpdated out; a
duplicate delivery changes nothing; remediation items from tasks' events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from services.scoring.main import create_app
from services.scoring.store.registry import UnitIn, import_units
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.payloads import DossiersChanged, RemediationCreated
from shared.settings import Settings
from tests.conftest import running
from tests.scoring.test_scoring_store import dossier, vn
from tests.support.kafka import eventually, read_topic, skip_backlog

SOURCE = "/cchc-monitor/ingest"


async def test_facts_in_snapshot_out(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCORING_STALE_INTERVAL_S", "0.2")
    monkeypatch.setenv("SCORING_STALE_DEBOUNCE_S", "0")
    settings = make_settings(service_name="scoring")
    p = "E" + uuid.uuid4().hex[:8]
    c1 = f"{p}.C1"
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    sessions = make_sessionmaker(engine)
    async with transaction(sessions) as s:
        await import_units(s, [
            UnitIn(id=p, name=p, level="province", kind="tỉnh", valid_from=date(2000, 1, 1)),
            UnitIn(id=c1, name=c1, level="commune", kind="xã", parent_id=p,
                   valid_from=date(2000, 1, 1)),
        ])  # fmt: skip
    await ensure_topics(settings)
    for group, topic in (
        ("scoring.facts", "ingest.dossiers"),
        ("scoring.remediation", "tasks.remediation"),
    ):
        await skip_backlog(settings.kafka_bootstrap_servers, group, [topic])
    event = CloudEvent.of(
        DossiersChanged(unit_id=c1, dossiers=[dossier(c1, 1), dossier(c1, 2, channel=2)]),
        source=SOURCE,
        subject=c1,
    )
    item = RemediationCreated(
        item_id=f"item-{p}", unit_id=c1, status="in_progress", deadline=vn(2026, 12, 1).date()
    )
    item_event = CloudEvent.of(item, source="/cchc-monitor/tasks", subject=item.item_id)
    producer = make_producer(settings, "test-scoring-ingest")
    await producer.start()
    versions_before = REGISTRY.get_sample_value("scoring_snapshot_versions_total") or 0
    try:
        async with running(create_app(settings)):
            for _ in range(2):  # at-least-once: the same event delivered twice
                await producer.send_and_wait("ingest.dossiers", value=event.value(),
                                             key=c1.encode(), headers=event.headers())  # fmt: skip
            await producer.send_and_wait("tasks.remediation", value=item_event.value(),
                                         key=c1.encode(), headers=item_event.headers())  # fmt: skip

            async def snapshot() -> Any:
                async with sessions() as s:
                    return (await s.execute(text(
                        "SELECT version, counters FROM scoring.snapshots "
                        "WHERE unit_id = :u AND period = '2026Q3' ORDER BY version DESC"),
                        {"u": p})).all()  # fmt: skip

            # the start-up catch-up queues the running months of every unit with open dossiers
            # in the session's shared database (thousands of pairs); the pairs our event queued
            # go ahead of them, so this waits for one recompute, not for the catch-up
            rows = await eventually(snapshot, timeout=120)
            assert rows, "no snapshot computed"
            assert [r[0] for r in rows] == [1]
            assert rows[0][1]["received"] == 2 and rows[0][1]["received_online"] == 1
            # /metrics counts the recompute that wrote them
            versions = REGISTRY.get_sample_value("scoring_snapshot_versions_total") or 0
            assert versions - versions_before >= 1
            assert (REGISTRY.get_sample_value("scoring_recompute_seconds_count") or 0) >= 1
            assert REGISTRY.get_sample_value("scoring_stale_queue") is not None

            async def remediation() -> Any:
                async with sessions() as s:
                    return (await s.execute(text(
                        "SELECT status FROM scoring.remediation_items WHERE item_id = :i"),
                        {"i": item.item_id})).scalar()  # fmt: skip

            assert await eventually(remediation, timeout=60) == "in_progress"
            msgs = await read_topic(settings.kafka_bootstrap_servers, "scoring.snapshots")
            mine = [
                json.loads(m.value or b"{}")
                for m in msgs
                if m.key == p.encode()
                and m.headers.get("ce_type") == b"vn.cchc.scoring.snapshot.updated.v1"
            ]
            assert {(m["period"], m["version"]) for m in mine} >= {("202609", 1), ("2026Q3", 1)}
            async with sessions() as s:
                n = (await s.execute(text(
                    "SELECT count(*) FROM scoring.processed_events WHERE event_id = :i"),
                    {"i": event.id})).scalar_one()  # fmt: skip
            assert n == 1
    finally:
        await producer.stop()
        await engine.dispose()
