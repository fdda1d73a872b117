"""Procedures and petitions feeds, backfill of a date range, rate limiting, migrations."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.domain.normalise import Rejection, normalise
from services.ingest.simulator import build
from services.ingest.simulator.data import VN
from services.ingest.sync.engine import SyncEngine
from services.ingest.sync.ratelimit import TokenBucket
from shared import migrate
from shared.devstack import Postgres
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import AGENCIES, add_source, stored

FAST = RetryPolicy(attempts=5, base_s=0.005, cap_s=0.05)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.mark.parametrize("feed", ["procedures", "petitions"])
async def test_other_feeds_store_the_source_set(pool: asyncpg.Pool, feed: str) -> None:
    sim = build(12, 2_000)
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, feeds=[feed], page_size=25)
        result = await SyncEngine(pool, policy=FAST).run(sid, feed)  # type: ignore[arg-type]
    assert result.status == "succeeded"
    now = datetime.fromtimestamp(sim.clock, VN)
    truth = {}
    for raw in sim.truth(feed).values():  # type: ignore[arg-type]
        out = normalise(feed, raw, source_id=sid, agencies=AGENCIES, now=now)  # type: ignore[arg-type]
        assert not isinstance(out, Rejection)
        truth[out.code] = out
    rows = await pool.fetch(f"SELECT * FROM ingest.{feed} WHERE source_id = $1", sid)
    assert {r["code"] for r in rows} == set(truth)
    for r in rows:
        rec = truth[r["code"]]
        assert r["unit_id"] == rec.unit_id and r["source_updated_at"] == rec.source_updated_at
    if feed == "procedures":  # NFD names from the source are stored NFC
        names = {r["code"]: r["name"] for r in rows}
        assert all(names[c] == truth[c].name for c in names)  # type: ignore[union-attr]
    events = await pool.fetchval(
        f"SELECT sum(jsonb_array_length(payload::jsonb->'{feed}')) FROM ingest.outbox "
        f"WHERE payload::jsonb->'{feed}'->0->>'source_id' = $1",
        sid,
    )
    assert events == len(truth)


async def test_backfill_walks_a_date_range_and_leaves_the_watermark(pool: asyncpg.Pool) -> None:
    sim = build(13, 2_000)
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, page_size=50)
        since = datetime(2026, 3, 1, tzinfo=VN)
        until = datetime(2026, 4, 1, tzinfo=VN)
        engine = SyncEngine(pool, policy=FAST)
        result = await engine.run(sid, "dossiers", kind="backfill", since=since, until=until)
    assert result.status == "succeeded"
    got = await stored(pool, sid)
    in_range = {
        c for c, r in sim.truth("dossiers").items()
        if since <= datetime.strptime(r["NgayCapNhat"], "%Y%m%d%H%M%S").replace(tzinfo=VN) <= until
    }  # fmt: skip
    assert in_range <= set(got)
    assert all(r.source_updated_at >= since for r in got.values())
    assert len(got) < len(in_range) + 50  # stopped within one page after `until`
    assert await pool.fetchval("SELECT count(*) FROM ingest.watermarks WHERE source_id = $1",
                               sid) == 0  # fmt: skip
    run = await pool.fetchrow("SELECT * FROM ingest.runs WHERE id = $1", result.run_id)
    assert run["kind"] == "backfill" and run["since"] == since and run["until"] == until


async def test_token_bucket_limits_the_rate() -> None:
    bucket = TokenBucket(rate_per_s=50, burst=1)
    started = time.monotonic()
    await asyncio.gather(*(bucket.acquire() for _ in range(11)))
    assert time.monotonic() - started >= 0.18  # 10 waits of 20 ms


async def test_migrations_upgrade_downgrade_upgrade(pg_server: Postgres) -> None:
    name = f"cchc_mig_{uuid.uuid4().hex[:8]}"
    url = await pg_server.create_database(name)
    try:
        await asyncio.to_thread(migrate.upgrade, "ingest", url)
        await asyncio.to_thread(migrate.downgrade, "ingest", url, "ingest_0001")
        conn = await asyncpg.connect(to_plain_url(url))
        try:
            assert await conn.fetchval("SELECT to_regclass('ingest.dossiers')") is None
            assert await conn.fetchval("SELECT to_regclass('ingest.outbox')") is not None
        finally:
            await conn.close()
        await asyncio.to_thread(migrate.upgrade, "ingest", url)
    finally:
        await pg_server.drop_database(name)


async def test_crash_after_last_page_closes_the_run_without_walking_again(
    pool: asyncpg.Pool,
) -> None:
    sid = await add_source(pool, "http://127.0.0.1:9")  # nothing listens: a fetch would fail
    run_id = f"crashed-{sid}"
    await pool.execute(
        "INSERT INTO ingest.runs (id, source_id, feed, kind, trigger, status, pages) "
        "VALUES ($1, $2, 'dossiers', 'incremental', 'schedule', 'running', 3)",
        run_id, sid,
    )  # fmt: skip
    seen = datetime(2026, 9, 30, 12, tzinfo=VN)
    await pool.execute(
        "INSERT INTO ingest.checkpoints (source_id, feed, run_id, cursor, pages, max_seen) "
        "VALUES ($1, 'dossiers', $2, NULL, 3, $3)",
        sid, run_id, seen,
    )  # fmt: skip
    result = await SyncEngine(pool, policy=FAST).run(sid, "dossiers")
    assert result.run_id == run_id and result.status == "succeeded" and not result.errors
    assert await pool.fetchval(
        "SELECT watermark FROM ingest.watermarks WHERE source_id = $1", sid) == seen  # fmt: skip
