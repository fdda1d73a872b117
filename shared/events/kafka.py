"""Kafka clients configured once, so every service talks to the broker the same way."""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
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
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
    )


def all_topics() -> list[str]:
    return [t for topic in TOPICS for t in (topic, dlq_topic(topic))]


def expected_partitions(settings: Settings, topic: str) -> int:
    """Dead-letter topics have one partition (their order is the order of failure)."""
    return 1 if topic.endswith(".dlq") else settings.kafka_topic_partitions


class TopicsNotReady(Exception):
    """The broker does not have a topic with the partitions we publish to."""


async def ensure_topics(settings: Settings, topics: list[str] | None = None) -> None:
    """Create the topics (and their dead-letter topics) if they are missing, and give an
    existing topic the configured partitions if it has fewer (a broker that auto-created it).

    Never rely on the broker's auto-creation: it picks its own partition count and no DLQ.
    A topic whose partitions cannot be added is logged as an error (see verify_partitions)."""
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
                    num_partitions=expected_partitions(settings, t),
                    replication_factor=settings.kafka_replication_factor,
                )
                for t in missing
            ]
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another instance won the race
            log.info("created topics", extra={"topics": missing})
        present = [t for t in wanted if t in existing]
        if present:
            counts = {
                d["topic"]: len(d.get("partitions") or [])
                for d in await admin.describe_topics(present)
                if not d.get("error_code")
            }
            short = {
                t: expected_partitions(settings, t)
                for t, n in counts.items()
                if n < expected_partitions(settings, t)
            }
            if short:
                log.warning("topics have too few partitions; adding", extra={"topics": short})
                try:
                    await admin.create_partitions({t: NewPartitions(n) for t, n in short.items()})
                except Exception as exc:  # tansu has no CreatePartitions
                    log.error("cannot add partitions", extra={"topics": short, "error": repr(exc)})
    finally:
        await admin.close()


async def verify_partitions(
    producer: AIOKafkaProducer, settings: Settings, topics: set[str]
) -> None:
    """Ask the broker (a fresh metadata request, not the producer's cache) whether every topic
    exists with the partitions the producer believes in; raise TopicsNotReady otherwise.

    A restarted in-memory broker comes back empty: a producer that trusted its cached metadata
    would be acknowledged on partitions that were auto-created or no longer exist. A topic with
    fewer partitions than configured (created by the broker on a client's metadata request,
    and tansu cannot add partitions) is reported loudly but used: a fresh producer partitions
    keys over what exists, so no event goes to a partition that is not there."""
    live = await producer.client.fetch_all_metadata()
    cached = producer.client.cluster
    stale: dict[str, tuple[int, int]] = {}
    for topic in topics:
        now = live.partitions_for_topic(topic) or set()
        believed = cached.partitions_for_topic(topic)
        if not now or (believed is not None and believed != now):
            stale[topic] = (len(believed or ()), len(now))
        elif len(now) < expected_partitions(settings, topic):
            log.error(
                "topic has fewer partitions than configured (auto-created by the broker?)",
                extra={
                    "topic": topic,
                    "partitions": len(now),
                    "configured": expected_partitions(settings, topic),
                },
            )
    if stale:
        raise TopicsNotReady(f"topics missing or changed on the broker (believed, now): {stale}")


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
