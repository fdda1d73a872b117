"""Scoring alerts through the real broker: AlertRaised → one item (idempotent on replay),
AlertCleared → noted on the item, which is closed ("chỉ số đã đạt"); the item's creation is
published on tasks.remediation."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select

from services.tasks.main import create_app
from services.tasks.store.models import Item, ItemHistory, ProgressNote, outbox_table
from shared.db import make_engine, make_sessionmaker
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.payloads import AlertCleared, AlertRaised
from shared.settings import Settings
from tests.conftest import running
from tests.support.kafka import eventually, read_topic, skip_backlog

SCORING = "/cchc-monitor/scoring"


async def test_alert_raised_creates_one_item_and_cleared_is_noted(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(service_name="tasks")
    await ensure_topics(settings)
    await skip_backlog(settings.kafka_bootstrap_servers, "tasks.alerts", ["scoring.snapshots"])
    engine = make_engine(settings.async_database_url, schema="tasks")
    sessions = make_sessionmaker(engine)
    alert_id = f"alert-{uuid.uuid4().hex[:8]}"
    raised = AlertRaised(
        alert_id=alert_id,
        rule="ontime_below",
        unit_id="P21.SNV",
        indicator="progress.ontime",
        period="2026Q3",
        message="Tỉ lệ hồ sơ đúng hạn dưới 90%",
        value=0.82,
        threshold=0.9,
    )
    first = CloudEvent.of(raised, source=SCORING, subject="P21.SNV")
    replay_new_id = CloudEvent.of(raised, source=SCORING, subject="P21.SNV")
    cleared = CloudEvent.of(
        AlertCleared(
            alert_id=alert_id,
            rule="ontime_below",
            unit_id="P21.SNV",
            indicator="progress.ontime",
            period="2026Q3",
            value=0.93,
        ),
        source=SCORING,
        subject="P21.SNV",
    )
    producer = make_producer(settings, "test-scoring")
    await producer.start()
    try:
        async with running(create_app(settings)):
            for ev in (first, first, replay_new_id, cleared):
                await producer.send_and_wait(
                    "scoring.snapshots", value=ev.value(), key=b"P21.SNV", headers=ev.headers()
                )

            async def cleared_noted() -> bool:
                async with sessions() as s:
                    n = await s.scalar(
                        select(func.count())
                        .select_from(ProgressNote)
                        .join(Item, Item.id == ProgressNote.item_id)
                        .where(Item.alert_id == alert_id)
                    )
                return bool(n)

            assert await eventually(cleared_noted, timeout=180), (
                "the alert's clearing was not noted"
            )
            async with sessions() as s:
                items = (
                    (await s.execute(select(Item).where(Item.alert_id == alert_id))).scalars().all()
                )
                assert len(items) == 1
                (it,) = items
                assert it.origin == "alert" and it.lead_unit_id == "P21.SNV"
                assert it.indicator == "progress.ontime" and it.deadline is not None
                actions = (
                    (
                        await s.execute(
                            select(ItemHistory.action)
                            .where(ItemHistory.item_id == it.id)
                            .order_by(ItemHistory.id)
                        )
                    )
                    .scalars()
                    .all()
                )
                # the indicator recovered: the item is closed with the reason, through events
                assert actions == ["created", "alert_cleared", "cancel"]
                assert it.status == "cancelled"
                reason = await s.scalar(
                    select(ItemHistory.reason).where(
                        ItemHistory.item_id == it.id, ItemHistory.action == "cancel"
                    )
                )
                assert reason == "chỉ số đã đạt"
                created = (
                    await s.execute(
                        select(outbox_table.c.event_id).where(
                            outbox_table.c.subject == it.id,
                            outbox_table.c.type == "vn.cchc.tasks.item.created.v1",
                        )
                    )
                ).all()
                assert len(created) == 1
                item_id = it.id

            async def published() -> bool:
                msgs = await read_topic(settings.kafka_bootstrap_servers, "tasks.remediation")
                return any(
                    m.headers.get("ce_subject") == item_id.encode()
                    and m.headers.get("ce_type") == b"vn.cchc.tasks.item.created.v1"
                    for m in msgs
                )

            assert await eventually(published, timeout=60)
    finally:
        await producer.stop()
        await engine.dispose()
