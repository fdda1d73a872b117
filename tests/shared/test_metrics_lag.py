"""Consumer lag and dead-letter depth on `/metrics`, read from the real broker: the figures move
when a consumer stops while events keep arriving, and when a poison event is dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.main import create_app
from services.tasks.store.models import processed_events_table
from shared.db import make_engine, make_sessionmaker
from shared.events.consumer import IdempotentConsumer
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.lag import ConsumerLagSampler, Group
from shared.events.payloads import Payload, RemediationCreated, dlq_topic
from shared.settings import Settings
from tests.conftest import running
from tests.support.kafka import eventually

SOURCE = "/cchc-monitor/test-lag"


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def lag_of(group: str, topic: str) -> float:
    return sum(
        gauge("kafka_consumer_lag", group=group, topic=topic, partition=str(p)) or 0
        for p in range(8)
    )


async def send(producer, topic: str, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        event = CloudEvent.of(
            RemediationCreated(item_id=f"lag-{i}", unit_id=f"U{i % 3}", status="not_started"),
            source=SOURCE,
        )
        await producer.send_and_wait(
            topic, value=event.value(), key=f"U{i % 3}".encode(), headers=event.headers()
        )


async def test_lag_grows_while_the_consumer_is_stopped_and_dlq_depth_counts_poison(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    topic = f"test.lag.{uuid.uuid4().hex[:8]}"
    group = f"lag-{topic}"
    await ensure_topics(settings, [topic, dlq_topic(topic)])
    engine = make_engine(settings.async_database_url, schema="tasks")
    producer = make_producer(settings, "test-lag")
    await producer.start()
    handled: list[str] = []

    async def handle(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        assert isinstance(payload, RemediationCreated)
        handled.append(payload.item_id)

    def consumer() -> IdempotentConsumer:
        return IdempotentConsumer(
            name=group,
            topics=[topic],
            handlers={RemediationCreated.event_type: handle},
            sessions=make_sessionmaker(engine),
            processed_table=processed_events_table,
            producer=producer,
            settings=settings,
        )

    sampler = ConsumerLagSampler(settings, [Group(group, [topic])], interval=0.2)
    sampler_task = asyncio.create_task(sampler.run())
    try:
        running_consumer = consumer()
        task = asyncio.create_task(running_consumer.run())
        await send(producer, topic, 5)
        await eventually(lambda: _true(len(handled) >= 5), timeout=30)
        # caught up: the committed offsets reach the end
        assert await eventually(lambda: _true(lag_of(group, topic) == 0), timeout=20)

        running_consumer.stop()
        await asyncio.wait_for(task, 30)
        await send(producer, topic, 7, start=5)
        assert await eventually(lambda: _true(lag_of(group, topic) == 7), timeout=20)

        # poison: undecodable bytes on the topic, a restarted consumer dead-letters them
        before = gauge("kafka_dlq_messages", topic=dlq_topic(topic)) or 0
        await producer.send_and_wait(topic, value=b"\xff poison", key=b"U1")
        running_consumer = consumer()
        task = asyncio.create_task(running_consumer.run())
        assert await eventually(
            lambda: _true((gauge("kafka_dlq_messages", topic=dlq_topic(topic)) or 0) == before + 1),
            timeout=40,
        )
        assert await eventually(lambda: _true(lag_of(group, topic) == 0), timeout=30)
        assert sorted(set(handled)) == sorted(f"lag-{i}" for i in range(12))
        running_consumer.stop()
        await asyncio.wait_for(task, 30)
    finally:
        sampler.stop()
        await asyncio.wait_for(sampler_task, 10)
        await producer.stop()
        await engine.dispose()


async def _true(value: bool) -> bool:
    return value


async def test_a_service_exports_its_groups_lag_on_metrics(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(service_name="tasks", metrics_sample_interval_s=0.2))
    async with running(app) as client:

        async def exported() -> str | None:
            body = (await client.get("/metrics")).text
            return body if 'kafka_consumer_lag{group="tasks.' in body else None

        body = await eventually(exported, timeout=40)
        assert "kafka_dlq_messages{" in body
