"""Idempotent Kafka consumer with a dead-letter topic.

For every message: decode the CloudEvent, then in ONE database transaction insert
(consumer, source, id) into `processed_events` and apply the handler's effects; a duplicate
inserts nothing and is skipped. A batch of a partition's messages is first tried in one
transaction together (a backlog's fast path); any failure sends it event by event. Offsets are committed manually after the transaction, so a
crash re-delivers and the dedup row makes the replay harmless. A message that cannot be decoded,
or whose handler keeps failing, goes to `<topic>.dlq` with the reason in its headers and the
partition moves on.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from opentelemetry.trace import SpanKind
from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import tracing
from shared.events.envelope import CloudEvent, UndecodableEvent
from shared.events.failures import Failure, classify, describe
from shared.events.kafka import ensure_topics
from shared.events.payloads import Payload, dlq_topic
from shared.metrics import EVENT_HANDLING, EVENTS_CONSUMED
from shared.settings import Settings
from shared.workers import wait_or_stop

log = logging.getLogger("cchc.consumer")

Handler = Callable[[AsyncSession, CloudEvent, Payload], Awaitable[None]]


class _Stopped(Exception):
    """stop() arrived while an event was held: leave without committing that event."""


class IdempotentConsumer:
    def __init__(
        self,
        *,
        name: str,
        topics: Iterable[str],
        handlers: dict[str, Handler],
        sessions: async_sessionmaker[AsyncSession],
        processed_table: Table,
        producer: AIOKafkaProducer,
        settings: Settings,
        group_id: str | None = None,
    ) -> None:
        self.name = name
        self.topics = list(topics)
        self.handlers = handlers
        self.sessions = sessions
        self.processed = processed_table
        self.producer = producer
        self.settings = settings
        self.group_id = group_id or name
        self.max_attempts = settings.consumer_max_attempts
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.assigned: set[TopicPartition] = set()
        self._committed: dict[TopicPartition, int] = {}  # what this loop committed last

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, commit it, and leave the group."""
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer crashed; restarting", extra={"consumer": self.name})
                await self._sleep(2.0)

    async def _run_once(self) -> None:
        # Subscribing to a missing topic makes the broker auto-create it with its own partition
        # count and no DLQ: create ours first, on every (re)start of the loop.
        await ensure_topics(
            self.settings, [t for topic in self.topics for t in (topic, dlq_topic(topic))]
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers,
            group_id=self.group_id,
            client_id=f"{self.name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self.settings.kafka_heartbeat_interval_ms,
            max_poll_records=self.settings.consumer_batch_size,
            # A restarted broker comes back without our topics: notice them again in seconds,
            # not after the default five minutes.
            metadata_max_age_ms=self.settings.kafka_metadata_max_age_ms,
        )
        consumer.subscribe(self.topics)
        self._committed.clear()
        await consumer.start()
        self._consumer = consumer
        try:
            while not self._stopping.is_set():
                batch = await consumer.getmany(timeout_ms=250)
                self.assigned = set(consumer.assignment())
                for tp, messages in batch.items():
                    if len(messages) > 1 and await self.process_together(messages):
                        await self._commit(consumer, tp, messages[-1].offset + 1)
                        continue
                    done: int | None = None
                    try:
                        for message in messages:
                            dead_lettered = await self.process(message)
                            done = message.offset + 1
                            if dead_lettered:
                                # at once: a crash before the batch's commit must not
                                # dead-letter it a second time
                                await self._commit(consumer, tp, done)
                    except _Stopped:
                        # The held event is not committed: the next owner handles it.
                        if done is not None:
                            await self._commit(consumer, tp, done)
                        return
                    # Commit only after every message of the partition has committed its effects.
                    await self._commit(consumer, tp, messages[-1].offset + 1)
        finally:
            self._consumer = None
            await consumer.stop()

    async def _commit(self, consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int) -> None:
        """Commit `offset`, unless the broker forgot the group's offsets for `tp` although we
        committed some: then it restarted empty (the local broker keeps everything in memory)
        and our position belongs to the old log; committing it would make the group skip the
        first records of the new one. Read the partition from its start instead (the
        processed_events rows make the re-reading harmless)."""
        ours = self._committed.get(tp)
        if ours is not None and await consumer.committed(tp) is None:
            log.warning(
                "the broker forgot our committed offsets (restarted?); reading the partition again",
                extra={
                    "consumer": self.name,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "position": offset,
                    "last_committed": ours,
                },
            )
            del self._committed[tp]
            await consumer.seek_to_beginning(tp)
            return
        await consumer.commit({tp: offset})
        self._committed[tp] = offset

    def _span(
        self,
        message: ConsumerRecord[Any, Any],
        event: CloudEvent,
        extra: dict[str, Any] | None = None,
    ) -> AbstractContextManager[Any]:
        """The span of one event's handling: the trace continues from the event's writer
        (ce_traceparent)."""
        return tracing.span(
            f"{message.topic} process",
            parent=event.traceparent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": message.topic,
                "messaging.consumer.group.name": self.group_id,
                "cloudevents.event_id": event.id,
                "cloudevents.event_type": event.type,
                **(extra or {}),
            },
        )

    async def process_together(self, messages: list[ConsumerRecord[Any, Any]]) -> bool:
        """A backlog's fast path: a partition's batch in ONE transaction (a commit per event is
        what a consumer catching up after downtime spends its time on). Only for a batch that
        needs no care: if any event cannot be decoded, or any handler fails, nothing of the
        batch is kept and False sends it through `process` event by event, where retries, holds
        and the dead-letter topic decide each event alone. Handlers act only on the session, so
        an attempt that is rolled back leaves nothing behind."""
        work: list[tuple[ConsumerRecord[Any, Any], CloudEvent, Payload, Handler]] = []
        ignored = 0
        for message in messages:
            try:
                event = CloudEvent.from_kafka(message.headers, message.value)
                handler = self.handlers.get(event.type)
                if handler is None:
                    ignored += 1
                    continue
                work.append((message, event, event.payload(), handler))
            except UndecodableEvent:
                return False
        # one dedup row per distinct event; a redelivery inside the batch is a duplicate too
        rows = {
            (e.source, e.id): {"consumer": self.name, "event_source": e.source,
                               "event_id": e.id, "event_type": e.type}
            for _, e, _, _ in work
        }  # fmt: skip
        outcomes: list[str] = []
        try:
            async with self.sessions() as session, session.begin():
                inserted: set[tuple[str, str]] = set()
                if rows:
                    result = await session.execute(
                        pg_insert(self.processed)
                        .values(list(rows.values()))
                        .on_conflict_do_nothing()
                        .returning(self.processed.c.event_source, self.processed.c.event_id)
                    )
                    inserted = {(src, eid) for src, eid in result}
                for message, event, payload, handler in work:
                    key = (event.source, event.id)
                    if key not in inserted:  # handled before, or earlier in this batch
                        outcomes.append("duplicate")
                        continue
                    inserted.discard(key)
                    started = time.perf_counter()
                    with self._span(
                        message, event, {"messaging.batch.message_count": len(messages)}
                    ):
                        await handler(session, event, payload)
                    EVENT_HANDLING.labels(self.name).observe(time.perf_counter() - started)
                    outcomes.append("processed")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.info(
                "batch not applied together; handling its events one by one",
                extra={
                    "consumer": self.name,
                    "events": len(messages),
                    "error": describe(exc)[:300],
                },
            )
            return False
        for outcome in outcomes:
            EVENTS_CONSUMED.labels(self.name, outcome).inc()
        if ignored:
            EVENTS_CONSUMED.labels(self.name, "ignored").inc(ignored)
        return True

    async def process(self, message: ConsumerRecord[Any, Any]) -> bool:
        """Handle one event; True when it went to the dead-letter topic."""
        try:
            event = CloudEvent.from_kafka(message.headers, message.value)
        except UndecodableEvent as exc:
            await self.dead_letter(message, str(exc))
            return True
        handler = self.handlers.get(event.type)
        if handler is None:
            EVENTS_CONSUMED.labels(self.name, "ignored").inc()
            return False  # a type this consumer does not care about
        try:
            payload = event.payload()
        except UndecodableEvent as exc:
            await self.dead_letter(message, str(exc))
            return True
        attempts = 0
        backoff = 0.5
        while True:
            started = time.perf_counter()
            try:
                with self._span(message, event):
                    outcome = await self._apply(event, payload, handler)
                EVENTS_CONSUMED.labels(self.name, outcome).inc()
                EVENT_HANDLING.labels(self.name).observe(time.perf_counter() - started)
                return False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failure = classify(exc)
                if failure is Failure.UNKNOWN and not await self._database_answers():
                    failure = Failure.TRANSIENT  # whatever it says, the database is away
                if failure is Failure.TRANSIENT:
                    # The event is valid; the dependency is not there. Hold it, never DLQ it.
                    EVENTS_CONSUMED.labels(self.name, "held").inc()
                    log.warning(
                        "dependency unavailable; holding the event and retrying",
                        extra={
                            "consumer": self.name,
                            "event_id": event.id,
                            "error": describe(exc)[:500],
                            "retry_in_s": round(backoff, 2),
                        },
                    )
                    await self._hold(backoff + random.uniform(0, backoff / 4))
                    backoff = min(backoff * 2, self.settings.consumer_retry_max_backoff_s)
                    continue
                attempts += 1
                if attempts >= self.max_attempts:
                    log.error(
                        "event failed; dead-lettered",
                        extra={
                            "consumer": self.name,
                            "event_id": event.id,
                            "error": describe(exc)[:500],
                        },
                    )
                    await self.dead_letter(message, describe(exc))
                    return True
                await self._hold(0.2 * 2**attempts)

    async def _hold(self, seconds: float) -> None:
        """Wait `seconds` without fetching anything more, still polling so the group keeps us.

        Every assigned partition is paused; a partition assigned meanwhile could still return
        records, which are put back (seek) so none is skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        consumer = self._consumer
        try:
            while True:
                if self._stopping.is_set():
                    raise _Stopped
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                if consumer is not None:
                    consumer.pause(*consumer.assignment())
                    stray = await consumer.getmany(timeout_ms=0)
                    for tp, records in stray.items():
                        consumer.seek(tp, records[0].offset)
                await self._sleep(min(remaining, 0.5))
        finally:
            if consumer is not None:
                consumer.resume(*consumer.paused())

    async def _database_answers(self) -> bool:
        try:
            async with asyncio.timeout(5), self.sessions() as session:
                await session.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def _apply(self, event: CloudEvent, payload: Payload, handler: Handler) -> str:
        async with self.sessions() as session, session.begin():
            inserted = (
                await session.execute(
                    pg_insert(self.processed)
                    .values(
                        consumer=self.name,
                        event_source=event.source,
                        event_id=event.id,
                        event_type=event.type,
                    )
                    .on_conflict_do_nothing()
                    .returning(self.processed.c.event_id)
                )
            ).first()
            if inserted is None:
                return "duplicate"
            await handler(session, event, payload)
        return "processed"

    async def dead_letter(self, message: ConsumerRecord[Any, Any], reason: str) -> None:
        EVENTS_CONSUMED.labels(self.name, "dead_lettered").inc()
        headers = [
            *(message.headers or ()),
            ("dlq_reason", reason[:4000].encode()),
            ("dlq_failed_at", datetime.now(UTC).isoformat().encode()),
            ("dlq_original_topic", message.topic.encode()),
            ("dlq_original_partition", str(message.partition).encode()),
            ("dlq_original_offset", str(message.offset).encode()),
            ("dlq_consumer", self.name.encode()),
        ]
        log.warning(
            "dead-lettered message",
            extra={
                "consumer": self.name,
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": reason[:500],
            },
        )
        await self.producer.send_and_wait(
            dlq_topic(message.topic), value=message.value, key=message.key, headers=headers
        )

    async def _sleep(self, seconds: float) -> None:
        await wait_or_stop(self._stopping, seconds)
