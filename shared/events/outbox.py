"""Transactional outbox: an event is a row written in the same transaction as the change it
announces; a relay publishes rows to Kafka in order and marks them published.

One relay per service is active at a time (a PostgreSQL advisory lock elects it), which is what
keeps the per-key order across several instances; the others stand by and take over when the
leader's connection goes away. Publication is at-least-once; consumers deduplicate.

Leadership is a session-level lock, so it lives exactly as long as the lock's connection. Every
batch therefore runs ON that connection: it reads the rows there, and marks them published there
in a statement that also checks `pg_locks` for our own backend. A PostgreSQL restart or a
terminated backend makes the next statement fail, and the relay stops publishing at once and
contends again; it can never go on publishing beside a new leader (at most the one batch in
flight when the lock vanished is sent again by the next leader, which consumers deduplicate).

Before every batch the relay asks the broker (fresh metadata) whether the batch's topics exist
with their configured partitions; after a broker restart (the local broker forgets everything)
it re-creates the topics and their DLQs and starts a new producer before publishing again, and
the check is repeated after the send so an acknowledgement from a broker that restarted under
the batch is not trusted.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from shared.events.envelope import CloudEvent
from shared.events.kafka import TopicsNotReady, ensure_topics, verify_partitions
from shared.events.payloads import Payload
from shared.metrics import (
    OUTBOX_BACKLOG,
    OUTBOX_ERRORS,
    OUTBOX_OLDEST_AGE,
    OUTBOX_PUBLISHED,
    OUTBOX_RELAY_LEADER,
)
from shared.settings import Settings
from shared.tracing import current_traceparent
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
        # W3C traceparent of the span that wrote the event (published as `ce_traceparent`)
        Column("traceparent", Text),
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
        "traceparent": current_traceparent(),
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


class LostLeadership(Exception):
    """The advisory lock's session is gone (PostgreSQL restarted, backend terminated)."""


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
        settings: Settings | None = None,
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
        # With settings, topics are (re-)created with their configured partitions whenever a
        # producer is made and their partitions verified before and after every batch.
        self.settings = settings
        self._lock_conn: AsyncConnection | None = None
        self.batches_published = 0  # by this instance; tests use it to see who led

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
                    log.info("outbox relay leads", extra={"outbox": self._qualified})
                    self._lock_conn = lock_conn
                    OUTBOX_RELAY_LEADER.labels(self.service).set(1)
                    try:
                        await self._lead()
                    finally:
                        OUTBOX_RELAY_LEADER.labels(self.service).set(0)
                        self._lock_conn = None
                        await self._unlock(lock_conn)
            except asyncio.CancelledError:
                raise
            except LostLeadership as exc:
                OUTBOX_ERRORS.labels(self.service).inc()
                log.warning(
                    "outbox relay lost its leadership; stopped publishing, contending again",
                    extra={"outbox": self._qualified, "error": repr(exc)[:500]},
                )
                await self._sleep(1.0)
            except Exception:
                log.exception("outbox relay lost its database connection; retrying")
                await self._sleep(1.0)

    async def _unlock(self, lock_conn: AsyncConnection) -> None:
        try:
            await lock_conn.execute(
                text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": self._lock_key}
            )
            await lock_conn.commit()
        except Exception:
            # The session is gone, and the lock with it; make sure the pool drops it.
            log.debug("advisory unlock failed", exc_info=True)
            with contextlib.suppress(Exception):
                await lock_conn.invalidate()

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
            except (asyncio.CancelledError, LostLeadership):
                raise
            except Exception as exc:
                OUTBOX_ERRORS.labels(self.service).inc()
                log.warning(
                    "outbox publish failed; retrying",
                    extra={"error": repr(exc), "retry_in_s": backoff},
                )
                await self._record_failure(repr(exc))
                await self._drop_producer()
                self._check_leadership_error(exc)
                await self._sleep(backoff + random.uniform(0, backoff / 2))
                backoff = min(backoff * 2, 30.0)
                continue
            if loop.time() - last_housekeeping > 5:
                await self._housekeeping()
                last_housekeeping = loop.time()
                await self._ensure_topics_quietly()
            if published < self.batch_size:
                await self._sleep(self.poll_interval)

    async def publish_batch(self) -> int:
        """Publish the oldest unpublished rows; returns how many were published.

        Runs on the lock's connection (see the module docstring): reading the rows proves the
        session that holds the lock is alive, and the rows are marked published only by a
        statement that finds our lock in `pg_locks`."""
        conn = self._lock_conn
        if conn is None:  # called outside run(): a one-off publish with its own connection
            async with self.engine.connect() as own:
                return await self._publish_batch_on(own, fenced=False)
        return await self._publish_batch_on(conn, fenced=True)

    async def _publish_batch_on(self, conn: AsyncConnection, *, fenced: bool) -> int:
        try:
            rows = (
                await conn.execute(
                    text(
                        f"SELECT id, event_id, topic, key, type, source, subject, time, payload, traceparent "
                        f"FROM {self._qualified} WHERE published_at IS NULL ORDER BY id LIMIT :n"
                    ),
                    {"n": self.batch_size},
                )
            ).all()
            await conn.rollback()
        except Exception as exc:
            if fenced:
                raise LostLeadership(
                    f"cannot read the outbox on the lock's session: {exc!r}"
                ) from exc
            raise
        if not rows:
            return 0
        topics = {r.topic for r in rows}
        await self._ready_producer(topics)
        await asyncio.wait_for(self._send(rows), self.send_timeout)
        if self.settings is not None:
            assert self.producer is not None
            # The broker may have restarted under the batch: then the acknowledgements are
            # worthless (the in-memory broker forgot them); publish the batch again.
            await verify_partitions(self.producer, self.settings, topics)
        ids = [r.id for r in rows]
        fence = (
            " AND EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND pid = pg_backend_pid())"
            if fenced
            else ""
        )
        try:
            marked = (
                await conn.execute(
                    text(
                        f"UPDATE {self._qualified} SET published_at = now(), "
                        f"attempts = attempts + 1 WHERE id = ANY(:ids){fence}"
                    ),
                    {"ids": ids},
                )
            ).rowcount
            await conn.commit()
        except Exception as exc:
            if fenced:
                raise LostLeadership(
                    f"cannot mark the batch on the lock's session: {exc!r}"
                ) from exc
            raise
        if fenced and marked == 0:
            raise LostLeadership("our advisory lock is no longer in pg_locks")
        self.batches_published += 1
        OUTBOX_PUBLISHED.labels(self.service).inc(len(ids))
        return len(ids)

    async def _ready_producer(self, topics: set[str]) -> None:
        """A started producer whose broker has `topics` with their configured partitions."""
        if self.producer is None:
            if self.settings is not None:
                await ensure_topics(self.settings)  # every (re)connect: never auto-creation
            producer = self.producer_factory()
            await asyncio.wait_for(producer.start(), self.send_timeout)
            self.producer = producer
        if self.settings is None:
            return
        try:
            await verify_partitions(self.producer, self.settings, topics)
        except TopicsNotReady as exc:
            log.warning(
                "broker lacks our topics (restarted?); re-creating them and reconnecting",
                extra={"error": str(exc)[:500]},
            )
            await self._drop_producer()
            await ensure_topics(self.settings)
            producer = self.producer_factory()
            await asyncio.wait_for(producer.start(), self.send_timeout)
            self.producer = producer
            await verify_partitions(producer, self.settings, topics)

    async def _ensure_topics_quietly(self) -> None:
        """Housekeeping: an emptied broker gets its topics back even while nothing is
        published, so consumers do not subscribe to auto-created or missing topics."""
        if self.settings is None:
            return
        try:
            await ensure_topics(self.settings)
        except Exception as exc:
            log.debug("topic check failed", extra={"error": repr(exc)})

    def _check_leadership_error(self, exc: Exception) -> None:
        """A failed batch whose cause is the lock's session ends the leadership."""
        conn = self._lock_conn
        if conn is not None and conn.invalidated:
            raise LostLeadership(f"lock session invalidated: {exc!r}")

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
                traceparent=row.traceparent,
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
