"""Test helpers that read the broker with an independent client (librdkafka via confluent-kafka)."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer


@dataclass
class Read:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def _read(bootstrap: str, topic: str, want: int, timeout: float) -> list[Read]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Read] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out.append(
                Read(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.key(),
                    msg.value(),
                    {k: v for k, v in (msg.headers() or [])},
                )
            )
    finally:
        consumer.close()
    return out


async def read_topic(bootstrap: str, topic: str, want: int, timeout: float = 30) -> list[Read]:
    """Everything on `topic` from the start, until `want` messages or the timeout."""
    return await asyncio.to_thread(_read, bootstrap, topic, want, timeout)


async def eventually(check, timeout: float = 20, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll an async predicate until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)
