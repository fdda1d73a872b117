"""The event spine's guarantees, on the real broker and database: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.store.models import outbox_table, processed_events_table
from shared.db import make_engine, make_sessionmaker
from shared.devstack import Broker, free_port
from shared.events.consumer import IdempotentConsumer
from shared.events.envelope import CloudEvent, UndecodableEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.outbox import Outbox, OutboxRelay, backlog
from shared.events.payloads import Payload, RemediationCreated
from shared.settings import Settings
from tests.support.kafka import eventually, read_topic

SOURCE = "/cchc-monitor/test"


def item(unit: str, n: int = 0) -> RemediationCreated:
    return RemediationCreated(
        item_id=f"item-{n}", unit_id=unit, status="not_started", deadline=date(2026, 12, 31)
    )


def test_envelope_round_trip_and_unknown_fields_ignored() -> None:
    event = CloudEvent.of(item("P21.SNV"), source=SOURCE, subject="item-0")
    headers = dict(event.headers())
    assert {
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_specversion",
        "ce_time",
        "ce_subject",
        "content-type",
    } <= set(headers)
    data = json.loads(event.value())
    data["a_field_from_the_future"] = 1
    decoded = CloudEvent.from_kafka(event.headers(), json.dumps(data).encode())
    assert decoded.id == event.id and decoded.type == RemediationCreated.event_type
    assert decoded.payload() == item("P21.SNV")
    with pytest.raises(UndecodableEvent):
        CloudEvent.from_kafka([("ce_id", b"1")], b"{}")
    with pytest.raises(UndecodableEvent):
        CloudEvent.from_kafka(event.headers(), b"not json")


@pytest.fixture
async def tasks_db(settings: Settings):
    engine = make_engine(settings.async_database_url, schema="tasks")
    yield engine
    await engine.dispose()


async def test_outbox_rows_commit_with_the_change_and_publish_in_order(
    settings: Settings, tasks_db: Any
) -> None:
    sessions = make_sessionmaker(tasks_db)
    outbox = Outbox(outbox_table, SOURCE)
    unit = f"U-{uuid.uuid4().hex[:8]}"
    # A rolled-back transaction leaves no event behind.
    with pytest.raises(RuntimeError):
        async with sessions() as s, s.begin():
            await outbox.add(s, item(unit, -1), key=unit)
            raise RuntimeError("the change failed")
    async with sessions() as s, s.begin():
        await outbox.add_many(s, [(item(unit, n), unit, f"item-{n}") for n in range(25)])

    await ensure_topics(settings)
    relay = OutboxRelay(
        tasks_db,
        outbox_table,
        lambda: make_producer(settings, "test-relay"),
        service="test",
        poll_interval=0.05,
        settings=settings,
    )
    task = asyncio.create_task(relay.run())
    try:

        async def drained() -> bool:
            async with tasks_db.connect() as c:
                left = (
                    await c.execute(
                        text(
                            "SELECT count(*) FROM tasks.outbox WHERE key = :k AND published_at IS NULL"
                        ),
                        {"k": unit},
                    )
                ).scalar_one()
            return left == 0

        assert await eventually(drained)
    finally:
        relay.stop()
        await task

    messages = [
        m
        for m in await read_topic(settings.kafka_bootstrap_servers, "tasks.remediation")
        if m.key == unit.encode()
    ]
    assert [json.loads(m.value or b"{}")["item_id"] for m in messages] == [
        f"item-{n}" for n in range(25)
    ]
    assert len({m.partition for m in messages}) == 1  # one key, one partition, in order
    h = messages[0].headers
    assert h["ce_type"] == RemediationCreated.event_type.encode()
    assert h["ce_source"] == SOURCE.encode() and h["ce_specversion"] == b"1.0"
    assert h["ce_subject"] == b"item-0" and h["content-type"] == b"application/json"


async def test_events_written_while_the_broker_is_down_are_published_when_it_returns(
    settings: Settings, tasks_db: Any, tmp_path: Any
) -> None:
    port = free_port()
    broker = Broker.start(port, tmp_path)
    own = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap})
    await ensure_topics(own)
    sessions = make_sessionmaker(tasks_db)
    outbox = Outbox(outbox_table, SOURCE)
    unit = f"OUT-{uuid.uuid4().hex[:8]}"
    relay = OutboxRelay(
        tasks_db,
        outbox_table,
        lambda: make_producer(own, "test-outage"),
        service="test",
        poll_interval=0.05,
        send_timeout=5,
        settings=own,
    )
    task = asyncio.create_task(relay.run())
    try:
        broker.stop()
        async with sessions() as s, s.begin():
            await outbox.add_many(s, [(item(unit, n), unit, None) for n in range(10)])
        await asyncio.sleep(2)
        assert await backlog(tasks_db, outbox_table) >= 10  # held, not lost
        # Same address, empty (in-memory) broker: the relay re-creates the topics itself.
        broker = Broker.start(port, tmp_path)
        messages = [
            m
            for m in await read_topic(broker.bootstrap, "tasks.remediation", 10, timeout=60)
            if m.key == unit.encode()
        ]
        assert sorted(json.loads(m.value or b"{}")["item_id"] for m in messages) == sorted(
            f"item-{n}" for n in range(10)
        )
    finally:
        relay.stop()
        await asyncio.wait_for(task, 30)
        broker.stop()


async def _raw_send(producer: AIOKafkaProducer, topic: str, event: CloudEvent) -> None:
    await producer.send_and_wait(topic, value=event.value(), key=b"k", headers=event.headers())


def logging_handler(topic: str) -> Callable[[AsyncSession, CloudEvent, Payload], Any]:
    """A handler that logs each item it handles to public.idem_log and cannot cope with the
    item 'explode' (a poison event)."""

    async def handle(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        assert isinstance(payload, RemediationCreated)
        if payload.item_id == "explode":
            raise ValueError("handler cannot cope")
        await session.execute(
            text("INSERT INTO public.idem_log VALUES (:t, :i)"), {"t": topic, "i": payload.item_id}
        )

    return handle


async def test_consumer_is_idempotent_and_dead_letters_poison(
    make_settings: Callable[..., Settings], tasks_db: Any
) -> None:
    settings = make_settings()
    topic = f"test.idem.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    sessions = make_sessionmaker(tasks_db)
    async with tasks_db.begin() as c:
        await c.execute(text("CREATE TABLE IF NOT EXISTS public.idem_log (topic text, item text)"))
    producer = make_producer(settings, "test-idem")
    await producer.start()

    handle = logging_handler(topic)

    consumer = IdempotentConsumer(
        name=f"test-{topic}",
        topics=[topic],
        handlers={RemediationCreated.event_type: handle},
        sessions=sessions,
        processed_table=processed_events_table,
        producer=producer,
        settings=settings,
    )
    task = asyncio.create_task(consumer.run())
    try:
        once = CloudEvent.of(item("U", 1), source=SOURCE)
        await _raw_send(producer, topic, once)
        await _raw_send(producer, topic, once)  # re-delivery of the same event
        await producer.send_and_wait(topic, value=b"\xff not an event", key=b"k")
        await _raw_send(
            producer,
            topic,
            CloudEvent.of(
                RemediationCreated(item_id="explode", unit_id="U", status="not_started"),
                source=SOURCE,
            ),
        )
        await _raw_send(producer, topic, CloudEvent.of(item("U", 2), source=SOURCE))

        async def handled() -> list[str]:
            async with tasks_db.connect() as c:
                rows = (
                    (
                        await c.execute(
                            text("SELECT item FROM public.idem_log WHERE topic = :t ORDER BY item"),
                            {"t": topic},
                        )
                    )
                    .scalars()
                    .all()
                )
            return list(rows) if len(rows) >= 2 else []

        assert await eventually(handled) == ["item-1", "item-2"]
        dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", 2, timeout=20)
        assert len(dead) == 2
        reasons = {m.headers["dlq_reason"].decode() for m in dead}
        assert any("missing CloudEvents headers" in r for r in reasons)
        assert any("handler cannot cope" in r for r in reasons)
        for m in dead:
            assert m.headers["dlq_original_topic"] == topic.encode()
            assert m.headers["dlq_original_offset"] in {b"2", b"3"}
            assert m.headers["dlq_original_partition"]
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)
        await producer.stop()
    # The partition moved on past the poison: nothing left for the group to redo.
    assert await handled() == ["item-1", "item-2"]


async def test_a_backlog_is_applied_together_and_a_poison_in_it_is_still_set_apart(
    make_settings: Callable[..., Settings], tasks_db: Any
) -> None:
    """Events that waited while the consumer was away arrive as one batch per partition: applied
    in one transaction, each exactly once (redeliveries inside the batch too); one event its
    handler cannot cope with sends that batch event by event, and only that one is
    dead-lettered."""
    settings = make_settings(consumer_batch_size=500)
    topic = f"test.backlog.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    sessions = make_sessionmaker(tasks_db)
    async with tasks_db.begin() as c:
        await c.execute(text("CREATE TABLE IF NOT EXISTS public.idem_log (topic text, item text)"))
    producer = make_producer(settings, "test-backlog")
    await producer.start()

    handle = logging_handler(topic)

    def consumer() -> IdempotentConsumer:
        return IdempotentConsumer(
            name=f"test-{topic}",
            topics=[topic],
            handlers={RemediationCreated.event_type: handle},
            sessions=sessions,
            processed_table=processed_events_table,
            producer=producer,
            settings=settings,
        )

    async def handled(n: int) -> list[str]:
        async with tasks_db.connect() as c:
            rows = (await c.execute(
                text("SELECT item FROM public.idem_log WHERE topic = :t"), {"t": topic}
            )).scalars().all()  # fmt: skip
        return list(rows) if len(rows) >= n else []

    async def run_over(events: list[CloudEvent], n: int) -> list[str]:
        for ev in events:  # all waiting before the consumer starts: one backlog
            await _raw_send(producer, topic, ev)
        c = consumer()
        task = asyncio.create_task(c.run())
        try:
            assert await eventually(lambda: handled(n), timeout=60)
            await asyncio.sleep(1)  # anything doubled would show by now
            return await handled(n)
        finally:
            c.stop()
            await asyncio.wait_for(task, 30)

    try:
        clean = [CloudEvent.of(item("U", n), source=SOURCE) for n in range(60)]
        got = await run_over([*clean, clean[3], clean[7]], 60)
        assert sorted(got) == sorted(f"item-{n}" for n in range(60))
        poison = CloudEvent.of(
            RemediationCreated(item_id="explode", unit_id="U", status="not_started"),
            source=SOURCE,
        )
        more = [CloudEvent.of(item("U", n), source=SOURCE) for n in range(60, 90)]
        got = await run_over([*more[:10], poison, *more[10:], more[0]], 90)
        assert sorted(got) == sorted(f"item-{n}" for n in range(90))
        dead = await read_topic(settings.kafka_bootstrap_servers, f"{topic}.dlq", 1, timeout=20)
        assert [m.headers["ce_id"] for m in dead] == [poison.id.encode()]
    finally:
        await producer.stop()


def _spawn(env: dict[str, str], topic: str, group: str, instance: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.spine", topic, group, instance],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def _count(engine: Any, topic: str) -> tuple[int, int, dict[str, int]]:
    async with engine.connect() as c:
        rows = (
            await c.execute(
                text(
                    "SELECT instance, count(*), count(DISTINCT event_id) FROM public.spine_log "
                    "WHERE topic = :t GROUP BY instance"
                ),
                {"t": topic},
            )
        ).all()
        distinct = (
            await c.execute(
                text("SELECT count(DISTINCT event_id) FROM public.spine_log WHERE topic = :t"),
                {"t": topic},
            )
        ).scalar_one()
    return sum(r[1] for r in rows), distinct, {r[0]: r[1] for r in rows}


async def test_two_instances_split_partitions_and_sigterm_finishes_the_batch(
    settings: Settings, subprocess_env: dict[str, str], tasks_db: Any
) -> None:
    topic = f"test.scale.{uuid.uuid4().hex[:8]}"
    group = f"group-{topic}"
    await ensure_topics(settings, [topic, f"{topic}.dlq"])
    async with tasks_db.begin() as c:
        from tests.support.spine import CREATE_LOG

        await c.execute(text(CREATE_LOG))
    producer = make_producer(settings, "test-scale")
    await producer.start()
    total = 400
    try:
        for n in range(total):
            event = CloudEvent.of(item(f"U{n % 16}", n), source=SOURCE)
            await producer.send(
                topic, value=event.value(), key=f"U{n % 16}".encode(), headers=event.headers()
            )
        await producer.flush()
    finally:
        await producer.stop()

    env = {**subprocess_env, "PYTHONPATH": os.getcwd(), "CONSUMER_BATCH_SIZE": "20"}
    a = _spawn(env, topic, group, "a")
    b = _spawn(env, topic, group, "b")
    try:
        # Both instances take a share of the partitions.
        async def both_busy() -> bool:
            _, _, per = await _count(tasks_db, topic)
            return len(per) == 2 and min(per.values()) >= 5

        assert await eventually(both_busy, timeout=60), await _count(tasks_db, topic)
        a.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(a.communicate, timeout=40)
        assert a.returncode == 0 and "stopped cleanly" in out, out

        # b takes over a's partitions; a's committed work is not redone and nothing is lost.
        async def all_done() -> bool:
            n, _, _ = await _count(tasks_db, topic)
            return n >= total

        assert await eventually(all_done, timeout=90), await _count(tasks_db, topic)
        await asyncio.sleep(1)
        n, distinct, per = await _count(tasks_db, topic)
        assert n == distinct == total, (n, distinct, per)
    finally:
        for p in (a, b):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                await asyncio.to_thread(p.wait, 40)


async def test_an_independent_client_lists_every_topic_and_its_dead_letter_topic(
    settings: Settings,
) -> None:
    from confluent_kafka.admin import AdminClient

    await ensure_topics(settings)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap_servers})
    topics = set((await asyncio.to_thread(admin.list_topics, timeout=10)).topics)
    for topic in ("ingest.dossiers", "scoring.snapshots", "tasks.remediation"):
        assert topic in topics and f"{topic}.dlq" in topics


async def test_dead_letters_are_listed_with_their_reason_and_replayed_through_the_idempotent_path(
    make_settings: Callable[..., Settings],
    tasks_db: Any,
    auth: Callable[..., dict[str, str]],
    subprocess_env: dict[str, str],
) -> None:
    from services.tasks.main import create_app
    from shared.events.failures import InvalidEvent
    from tests.conftest import running

    settings = make_settings()
    topic = "tasks.remediation"
    unit = f"DLQ-{uuid.uuid4().hex[:8]}"
    sessions = make_sessionmaker(tasks_db)
    async with tasks_db.begin() as c:
        await c.execute(text("CREATE TABLE IF NOT EXISTS public.idem_log (topic text, item text)"))
        await c.execute(text("CREATE TABLE IF NOT EXISTS public.dlq_fixed (item text)"))
    producer = make_producer(settings, "test-dlq")
    await producer.start()

    async def handle(session: AsyncSession, event: CloudEvent, payload: Payload) -> None:
        assert isinstance(payload, RemediationCreated)
        if payload.unit_id != unit:
            return
        fixed = (
            await session.execute(
                text("SELECT count(*) FROM public.dlq_fixed WHERE item = :i"),
                {"i": payload.item_id},
            )
        ).scalar_one()
        if payload.item_id == "refused" and not fixed:
            raise InvalidEvent("no such agency in the registry yet")
        await session.execute(
            text("INSERT INTO public.idem_log VALUES (:t, :i)"), {"t": unit, "i": payload.item_id}
        )

    consumer = IdempotentConsumer(
        name=f"test-dlq-{unit}",
        topics=[topic],
        handlers={RemediationCreated.event_type: handle},
        sessions=sessions,
        processed_table=processed_events_table,
        producer=producer,
        settings=settings,
    )

    async def handled() -> list[str]:
        async with tasks_db.connect() as c:
            rows = await c.execute(
                text("SELECT item FROM public.idem_log WHERE topic = :t ORDER BY item"),
                {"t": unit},
            )
            return list(rows.scalars())

    refused = CloudEvent.of(
        RemediationCreated(item_id="refused", unit_id=unit, status="not_started"), source=SOURCE
    )
    task = asyncio.create_task(consumer.run())
    try:
        await _raw_send(producer, topic, CloudEvent.of(item(unit, 1), source=SOURCE))
        await _raw_send(producer, topic, refused)
        assert await eventually(lambda: _nonempty(handled)) == ["item-1"]

        app = create_app(make_settings(service_name="tasks", workers_enabled=False))
        async with running(app) as client:

            async def listed() -> list[dict[str, Any]]:
                r = await client.get(
                    "/api/v1/admin/dlq", params={"topic": topic}, headers=auth("admin")
                )
                assert r.status_code == 200, r.text
                return [e for e in r.json()["entries"] if e["event_id"] == refused.id]

            entries = await eventually(listed, timeout=30)
            assert len(entries) == 1
            entry = entries[0]
            assert "no such agency in the registry yet" in entry["reason"]
            assert entry["consumer"] == consumer.name and entry["original_topic"] == topic
            assert entry["event_type"] == RemediationCreated.event_type and entry["key"] == "k"

            # Only admins; only known topics; a replay request must choose something.
            r = await client.get(
                "/api/v1/admin/dlq", params={"topic": topic}, headers=auth("viewer")
            )
            assert r.status_code == 403
            r = await client.get("/api/v1/admin/dlq", params={"topic": "nope"}, headers=auth())
            assert r.status_code == 404
            r = await client.post("/api/v1/admin/dlq/replay", json={"topic": topic}, headers=auth())
            assert r.status_code == 422

            # The cause is fixed; the chosen dead letter is replayed and handled once.
            async with tasks_db.begin() as c:
                await c.execute(text("INSERT INTO public.dlq_fixed VALUES ('refused')"))
            r = await client.post(
                "/api/v1/admin/dlq/replay",
                json={"topic": topic, "offsets": [entry["offset"]], "event_ids": ["missing-id"]},
                headers=auth(),
            )
            assert r.status_code == 200, r.text
            assert [e["event_id"] for e in r.json()["replayed"]] == [refused.id]
            assert r.json()["not_found"] == ["missing-id"]

            async def both() -> list[str]:
                rows = await handled()
                return rows if len(rows) >= 2 else []

            assert await eventually(both) == ["item-1", "refused"]
        # The command line does the same; replaying an event already processed changes nothing.
        env = {**subprocess_env, "PYTHONPATH": os.getcwd()}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "shared.events.dlq", "replay", topic, "--event-id", refused.id],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert refused.id in done.stdout
        listing = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "shared.events.dlq", "list", topic],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert any(
            json.loads(line)["event_id"] == refused.id for line in listing.stdout.splitlines()
        )
        await asyncio.sleep(3)
        assert await handled() == ["item-1", "refused"]
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 30)
        await producer.stop()


async def _nonempty(check: Callable[[], Any]) -> Any:
    rows = await check()
    return rows or None


def test_failures_are_classified_in_one_place() -> None:
    import asyncpg
    from sqlalchemy import exc as sa_exc

    from shared.events.failures import Failure, InvalidEvent, classify

    def wrapped(inner: BaseException, *, invalidated: bool = False) -> BaseException:
        return sa_exc.DBAPIError("SELECT 1", {}, inner, connection_invalidated=invalidated)

    # The database away, in the shapes PostgreSQL's absence really takes.
    for exc in (
        FileNotFoundError(2, "No such file or directory"),
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        wrapped(ValueError("boom"), invalidated=True),
        sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ):
        assert classify(exc) is Failure.TRANSIENT, exc
    # The event itself is wrong.
    for exc in (
        InvalidEvent("no such agency"),
        UndecodableEvent("value is not JSON"),
        asyncpg.exceptions.UntranslatableCharacterError("\\u0000 cannot be converted"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
    ):
        assert classify(exc) is Failure.INVALID, exc
    assert classify(ValueError("handler cannot cope")) is Failure.UNKNOWN
