"""Transactional outbox: an event is a row written in the same transaction as the change it
announces; a relay publishes rows to Kafka in order and marks them published.

One relay per service is active at a time (a PostgreSQL advisory lock elects it), which is what
keeps the per-key order across several instances; the others stand by and take over when the
leader's connection goes away. Publication is at-least-once; consumers deduplicate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    insert,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from shared.events.envelope import CloudEvent
from shared.events.payloads import Payload
from shared.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_ERRORS,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISHED,
    OUTBOX_RELAY_LEADER,
)
from shared.workers import wait_or_stop

log = logging.getLogger("cchc.outbox")


def define_event_tables(metadata: MetaData) -> tuple[Table, Table]:
    """The outbox and processed-event tables, in the service's own schema."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", Text, nullable=False),
        Column("topic", Text, nullable=False),
        Column("key", Text, nullable=False),
        Column("type", Text, nullable=False),
        Column("source", Text, nullable=False),
        Column("subject", Text),
        Column("time", DateTime(timezone=True), nullable=False),
        # The event's JSON exactly as published (pydantic's field order): the relay sends these
        # bytes as they are, so PostgreSQL never parses them (no jsonb on the write path).
        Column("payload", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("last_error", Text),
        Index("ix_outbox_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    )
    processed = Table(
        "processed_events",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_source", Text, nullable=False),
        Column("event_id", Text, nullable=False),
        Column("event_type", Text, nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        PrimaryKeyConstraint("consumer", "event_source", "event_id"),
    )
    return outbox, processed


def outbox_row(
    payload: Payload, *, source: str, key: str, subject: str | None = None
) -> dict[str, Any]:
    """The outbox row for one event: usable with `insert().values([...])` or COPY.

    `payload` is the JSON text the relay publishes as the message value."""
    return {
        "event_id": str(uuid.uuid4()),
        "topic": payload.topic,
        "key": key,
        "type": payload.event_type,
        "source": source,
        "subject": subject,
        "time": datetime.now(UTC),
        "payload": payload.model_dump_json(),
    }


class Outbox:
    """Writes events into the service's outbox table inside the caller's transaction."""

    def __init__(self, table: Table, source: str) -> None:
        self.table = table
        self.source = source

    async def add(
        self, session: AsyncSession, payload: Payload, *, key: str, subject: str | None = None
    ) -> None:
        await self.add_many(session, [(payload, key, subject)])

    async def add_many(
        self, session: AsyncSession, events: Iterable[tuple[Payload, str, str | None]]
    ) -> int:
        rows = [outbox_row(p, source=self.source, key=k, subject=s) for p, k, s in events]
        if rows:
            await session.execute(insert(self.table), rows)
        return len(rows)


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: Table,
        producer_factory: Callable[[], AIOKafkaProducer],
        *,
        service: str,
        poll_interval: float = 0.1,
        batch_size: int = 500,
        retention_hours: int = 72,
        send_timeout: float = 30.0,
    ) -> None:
        self.engine = engine
        self.table = table
        # The relay owns its producer: after a broker outage a fresh client recovers faster and
        # more predictably than one with stale connections and expired batches.
        self.producer_factory = producer_factory
        self.producer: AIOKafkaProducer | None = None
        self.send_timeout = send_timeout
        self.service = service
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.retention_hours = retention_hours
        self._stopping = asyncio.Event()
        self._qualified = f"{table.schema}.{table.name}" if table.schema else table.name
        self._lock_key = f"cchc-outbox:{self._qualified}"

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run until stopped: win the leader lock, then publish; stand by while another leads."""
        OUTBOX_RELAY_LEADER.labels(self.service).set(0)
        while not self._stopping.is_set():
            try:
                async with self.engine.connect() as lock_conn:
                    got = (
                        await lock_conn.execute(
                            text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": self._lock_key}
                        )
                    ).scalar()
                    await lock_conn.commit()
                    if not got:
                        await self._sleep(1.0)
                        continue
                    OUTBOX_RELAY_LEADER.labels(self.service).set(1)
                    try:
                        await self._lead()
                    finally:
                        OUTBOX_RELAY_LEADER.labels(self.service).set(0)
                        await lock_conn.execute(
                            text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": self._lock_key}
                        )
                        await lock_conn.commit()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay lost its database connection; retrying")
                await self._sleep(1.0)

    async def _lead(self) -> None:
        try:
            await self._lead_with_producer()
        finally:
            await self._drop_producer()

    async def _drop_producer(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), 5)
            except Exception:
                log.debug("producer stop failed", exc_info=True)

    async def _lead_with_producer(self) -> None:
        backoff = 0.2
        last_housekeeping = 0.0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            try:
                published = await self.publish_batch()
                backoff = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                OUTBOX_ERRORS.labels(self.service).inc()
                log.warning(
                    "outbox publish failed; retrying",
                    extra={"error": repr(exc), "retry_in_s": backoff},
                )
                await self._record_failure(repr(exc))
                await self._drop_producer()
                await self._sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, 30.0)
                continue
            if loop.time() - last_housekeeping > 5:
                await self._housekeeping()
                last_housekeeping = loop.time()
            if published < self.batch_size:
                await self._sleep(self.poll_interval)

    async def publish_batch(self) -> int:
        """Publish the oldest unpublished rows; returns how many were published."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        f"SELECT id, event_id, topic, key, type, source, subject, time, payload "
                        f"FROM {self._qualified} WHERE published_at IS NULL ORDER BY id LIMIT :n"
                    ),
                    {"n": self.batch_size},
                )
            ).all()
            await conn.rollback()
        if not rows:
            return 0
        if self.producer is None:
            producer = self.producer_factory()
            await asyncio.wait_for(producer.start(), self.send_timeout)
            self.producer = producer
        await asyncio.wait_for(self._send(rows), self.send_timeout)
        ids = [r.id for r in rows]
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    f"UPDATE {self._qualified} SET published_at = now(), attempts = attempts + 1 "
                    f"WHERE id = ANY(:ids)"
                ),
                {"ids": ids},
            )
        OUTBOX_PUBLISHED.labels(self.service).inc(len(ids))
        return len(ids)

    async def _send(self, rows: Sequence[Any]) -> None:
        assert self.producer is not None
        futures = []
        for row in rows:
            event = CloudEvent(
                type=row.type,
                source=row.source,
                id=row.event_id,
                subject=row.subject,
                time=row.time,
                data={},
            )
            futures.append(
                await self.producer.send(
                    row.topic,
                    value=row.payload.encode(),
                    key=row.key.encode(),
                    headers=event.headers(),
                )
            )
        await asyncio.gather(*futures)

    async def _record_failure(self, error: str) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    text(
                        f"UPDATE {self._qualified} SET attempts = attempts + 1, last_error = :e "
                        f"WHERE id = (SELECT min(id) FROM {self._qualified} "
                        f"WHERE published_at IS NULL)"
                    ),
                    {"e": error[:1000]},
                )
        except Exception:
            log.debug("could not record outbox failure", exc_info=True)

    async def _housekeeping(self) -> None:
        async with self.engine.begin() as conn:
            backlog, oldest_age = (
                await conn.execute(
                    text(
                        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
                        f"FROM {self._qualified} WHERE published_at IS NULL"
                    )
                )
            ).one()
            await conn.execute(
                text(
                    f"DELETE FROM {self._qualified} WHERE published_at < now() - make_interval("
                    f"hours => :h)"
                ),
                {"h": self.retention_hours},
            )
        OUTBOX_BACKLOG.labels(self.service).set(backlog)
        OUTBOX_OLDEST_AGE.labels(self.service).set(float(oldest_age))

    async def _sleep(self, seconds: float) -> None:
        await wait_or_stop(self._stopping, seconds)


async def backlog(engine: AsyncEngine, table: Table) -> int:
    q = f"{table.schema}.{table.name}" if table.schema else table.name
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(text(f"SELECT count(*) FROM {q} WHERE published_at IS NULL"))
            ).scalar_one()
        )
