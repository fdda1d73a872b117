"""Test helpers that read the broker with an independent client (librdkafka via confluent-kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import cast

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
