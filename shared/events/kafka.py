"""Kafka clients configured once, so every service talks to the broker the same way."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.events.payloads import TOPICS, dlq_topic
from shared.settings import Settings

log = logging.getLogger("cchc.kafka")


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=5,
        request_timeout_ms=15_000,
        retry_backoff_ms=200,
    )


def all_topics() -> list[str]:
    return [t for topic in TOPICS for t in (topic, dlq_topic(topic))]


async def ensure_topics(settings: Settings, topics: list[str] | None = None) -> None:
    """Create the topics (and their dead-letter topics) if they are missing."""
    wanted = topics or all_topics()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in wanted if t not in existing]
        if missing:
            new = [
                NewTopic(
                    t,
                    num_partitions=1 if t.endswith(".dlq") else settings.kafka_topic_partitions,
                    replication_factor=settings.kafka_replication_factor,
                )
                for t in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another instance won the race
            log.info("created topics", extra={"topics": missing})
    finally:
        await admin.close()


async def broker_reachable(settings: Settings, timeout: float = 3.0) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=int(timeout * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        await asyncio.wait_for(admin.list_topics(), timeout)
        return True
    except Exception:
        return False
    finally:
        try:
            await admin.close()
        except Exception:
            pass
