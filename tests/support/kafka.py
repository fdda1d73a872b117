"""Test helpers that read the broker with an independent client (librdkafka via confluent-kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import cast

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AIOTopicPartition
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


@dataclass
class Read:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def _read(bootstrap: str, topic: str, want: int | None, timeout: float) -> list[Read]:
    """Read a topic from the beginning without joining a group (no rebalance to wait for).

    With `want` None, reads until the topic has been quiet for two seconds (tansu's high
    watermarks are not reliable); otherwise until `want` messages arrived or the timeout passed.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    out: list[Read] = []
    deadline = time.monotonic() + timeout
    try:
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline:
            meta = consumer.list_topics(topic, timeout=5)
            t = meta.topics.get(topic)
            partitions = sorted(t.partitions) if t and not t.error else []
            if not partitions:
                time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        last = time.monotonic()
        while time.monotonic() < deadline:
            if want is None and time.monotonic() - last > 2:
                break
            if want is not None and len(out) >= want:
                break
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            last = time.monotonic()
            # a consumed message without error always has its topic, partition and offset, and
            # its headers as a list of (name, bytes) pairs (the dict form is for producing)
            got_topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            assert got_topic is not None and partition is not None and offset is not None
            headers = msg.headers() or []
            assert isinstance(headers, list)
            out.append(
                Read(
                    got_topic,
                    partition,
                    offset,
                    msg.key(),
                    msg.value(),
                    {k: cast(bytes, v) for k, v in headers},
                )
            )
    finally:
        consumer.close()
    return out


async def read_topic(
    bootstrap: str, topic: str, want: int | None = None, timeout: float = 30
) -> list[Read]:
    """`topic` from the start: up to its current end, or until `want` messages arrived."""
    return await asyncio.to_thread(_read, bootstrap, topic, want, timeout)


async def eventually(check, timeout: float = 20, interval: float = 0.2):
    """Poll an async predicate until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


async def skip_backlog(bootstrap: str, group: str, topics: list[str], timeout: float = 60) -> None:
    """Move a consumer group to the current end of `topics`, as a member of the group.

    The session's tests share one broker: a service's group finds waiting every event the tests
    before it published (tens of thousands of snapshot and dossier events). A test whose subject
    is its own events skips that backlog rather than wait minutes for it; what a backlog does is
    tested where it is the subject (the consumer's batch path, the e2e replay)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # a group that never committed: from the start, as ours
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    consumer.subscribe(topics)
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while not consumer.assignment():
            if time.monotonic() > deadline:
                raise AssertionError(f"{group} was assigned no partition of {topics}")
            await consumer.getmany(timeout_ms=200)
        # read through to the end (tansu under-reports end offsets, so seek_to_end falls short):
        # until two polls in a row come back empty
        ends: dict[AIOTopicPartition, int] = {}
        empty = 0
        while empty < 2 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            empty = 0 if batch else empty + 1
            for tp, messages in batch.items():
                ends[tp] = messages[-1].offset + 1
        if ends:
            await consumer.commit(ends)
    finally:
        await consumer.stop()
