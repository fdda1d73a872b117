"""Dead-letter topics: list what is there and why, and replay chosen events.

A replay puts the message back on its original topic with its original CloudEvents headers (the
same `ce_id`), so it goes through the normal idempotent path: a consumer that already processed
the event skips it (processed_events), one that dead-lettered it handles it now.

    python -m shared.events.dlq list ingest.dossiers [--limit 50]
    python -m shared.events.dlq replay ingest.dossiers --offset 3 --offset 7
    python -m shared.events.dlq replay ingest.dossiers --event-id 6f1c…

The same operations are on every service as admin-only endpoints (shared.events.dlq_api).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import BaseModel, Field

from shared.events.kafka import ensure_topics, make_producer
from shared.events.payloads import dlq_topic
from shared.settings import Settings

DLQ_HEADER_PREFIX = "dlq_"
VALUE_PREVIEW = 2000


class DeadLetter(BaseModel):
    """One dead-lettered message, with the reason the consumer gave."""

    partition: int = Field(examples=[0], description="Partition of the dead-letter topic")
    offset: int = Field(examples=[3], description="Offset in the dead-letter topic")
    event_id: str | None = Field(examples=["6f1c2a9e-0b7d-4c1e-9a57-3c1d8e2b4f10"])
    event_type: str | None = Field(examples=["vn.gov.cchc.ingest.dossiers-changed.v1"])
    event_source: str | None = Field(examples=["/cchc-monitor/ingest"])
    key: str | None = Field(examples=["P21.SNV"])
    reason: str | None = Field(examples=["invalid payload: field required"])
    consumer: str | None = Field(examples=["scoring.dossiers"])
    original_topic: str | None = Field(examples=["ingest.dossiers"])
    original_partition: int | None = Field(examples=[2])
    original_offset: int | None = Field(examples=[1041])
    failed_at: str | None = Field(examples=["2026-06-10T08:15:00+00:00"])
    replayed_from: str | None = Field(
        default=None, description="Set when this message was itself a replay (partition:offset)"
    )
    value: str = Field(description="The message value as text (first 2,000 characters)")


@dataclass(frozen=True)
class _Raw:
    entry: DeadLetter
    record: ConsumerRecord[bytes, bytes]


def _text(headers: dict[str, bytes], name: str) -> str | None:
    value = headers.get(name)
    return value.decode("utf-8", "replace") if value is not None else None


def _int(headers: dict[str, bytes], name: str) -> int | None:
    value = _text(headers, name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _entry(record: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    headers = {k: v for k, v in record.headers or ()}
    return DeadLetter(
        partition=record.partition,
        offset=record.offset,
        event_id=_text(headers, "ce_id"),
        event_type=_text(headers, "ce_type"),
        event_source=_text(headers, "ce_source"),
        key=record.key.decode("utf-8", "replace") if record.key is not None else None,
        reason=_text(headers, "dlq_reason"),
        consumer=_text(headers, "dlq_consumer"),
        original_topic=_text(headers, "dlq_original_topic"),
        original_partition=_int(headers, "dlq_original_partition"),
        original_offset=_int(headers, "dlq_original_offset"),
        failed_at=_text(headers, "dlq_failed_at"),
        replayed_from=_text(headers, "replayed_from"),
        value=(record.value or b"").decode("utf-8", "replace")[:VALUE_PREVIEW],
    )


async def _read(settings: Settings, topic: str, timeout: float = 15.0) -> list[_Raw]:
    """The whole dead-letter topic of `topic`, without joining a consumer group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        request_timeout_ms=int(timeout * 1000),
    )
    await asyncio.wait_for(consumer.start(), timeout)
    out: list[_Raw] = []
    try:
        # All topics' metadata (a fresh view); asking for the one topic would auto-create it.
        if dlq_topic(topic) not in await consumer.topics():
            return []
        numbers = consumer.partitions_for_topic(dlq_topic(topic))
        if not numbers:
            return []
        tps = [TopicPartition(dlq_topic(topic), p) for p in sorted(numbers)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for records in batch.values():
                out.extend(_Raw(_entry(r), r) for r in records)
            # tansu under-reports end offsets for multi-record batches: stop only once past
            # them AND a poll came back empty.
            positions = {tp: await consumer.position(tp) for tp in tps}
            if not batch and all(positions[tp] >= ends[tp] for tp in tps):
                break
    finally:
        await consumer.stop()
    out.sort(key=lambda raw: (raw.entry.partition, raw.entry.offset))
    return out


async def list_dead_letters(
    settings: Settings, topic: str, *, limit: int = 100, after_offset: int = -1
) -> list[DeadLetter]:
    """Dead letters of `topic`, oldest first, those after `after_offset` (for paging)."""
    entries = [raw.entry for raw in await _read(settings, topic)]
    return [e for e in entries if e.offset > after_offset][:limit]


class Replayed(BaseModel):
    replayed: list[DeadLetter] = Field(description="Put back on their original topic")
    not_found: list[str] = Field(
        description="Requested offsets or event ids that are not in the dead-letter topic"
    )


async def replay(
    settings: Settings,
    topic: str,
    *,
    offsets: list[int] | None = None,
    event_ids: list[str] | None = None,
    partition: int = 0,
) -> Replayed:
    """Put the chosen dead letters back on `topic` (their original topic), original headers and
    key, so consumers handle them through the normal idempotent path."""
    wanted_offsets = set(offsets or ())
    wanted_ids = set(event_ids or ())
    chosen = [
        raw
        for raw in await _read(settings, topic)
        if (raw.entry.partition == partition and raw.entry.offset in wanted_offsets)
        or (raw.entry.event_id is not None and raw.entry.event_id in wanted_ids)
    ]
    found_offsets = {r.entry.offset for r in chosen if r.entry.partition == partition}
    found_ids = {r.entry.event_id for r in chosen}
    not_found = [str(o) for o in sorted(wanted_offsets - found_offsets)] + sorted(
        wanted_ids - {i for i in found_ids if i is not None}
    )
    if chosen:
        await ensure_topics(settings, [topic, dlq_topic(topic)])
        producer = make_producer(settings, "dlq-replay")
        await producer.start()
        try:
            for raw in chosen:
                headers = [
                    (k, v)
                    for k, v in raw.record.headers or ()
                    if not k.startswith(DLQ_HEADER_PREFIX) and k != "replayed_from"
                ]
                headers.append(
                    ("replayed_from", f"{raw.entry.partition}:{raw.entry.offset}".encode())
                )
                await producer.send_and_wait(
                    topic, value=raw.record.value, key=raw.record.key, headers=headers
                )
        finally:
            await producer.stop()
    return Replayed(replayed=[r.entry for r in chosen], not_found=not_found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.events.dlq", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="print the dead letters of a topic, one JSON a line")
    listing.add_argument("topic", help="the original topic, e.g. ingest.dossiers")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--after-offset", type=int, default=-1)
    again = sub.add_parser("replay", help="put chosen dead letters back on their topic")
    again.add_argument("topic")
    again.add_argument("--offset", type=int, action="append", default=[])
    again.add_argument("--partition", type=int, default=0)
    again.add_argument("--event-id", action="append", default=[])
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "list":
        entries = asyncio.run(
            list_dead_letters(
                settings, args.topic, limit=args.limit, after_offset=args.after_offset
            )
        )
        for entry in entries:
            print(entry.model_dump_json())
        return 0
    if not args.offset and not args.event_id:
        parser.error("replay needs --offset or --event-id")
    result = asyncio.run(
        replay(
            settings,
            args.topic,
            offsets=args.offset,
            event_ids=args.event_id,
            partition=args.partition,
        )
    )
    print(json.dumps(result.model_dump(), ensure_ascii=False, indent=2))
    return 0 if not result.not_found else 1


if __name__ == "__main__":
    sys.exit(main())
