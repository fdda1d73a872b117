"""A backfill walked as parallel date slices within one feed: faults on, it ends with the exact
source set; stopped half-way, the next start walks on from each slice's checkpoint."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.simulator import Faults, build
from services.ingest.simulator.data import VN
from services.ingest.sync.engine import SyncEngine
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import add_source, expected, stored

FAST = RetryPolicy(attempts=40, base_s=0.005, cap_s=0.05, max_retry_after_s=0.05)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=10)
    yield p
    await p.close()


async def _sliced_source(pool: asyncpg.Pool, url: str, slices: int) -> str:
    sid = await add_source(pool, url, page_size=53)
    await pool.execute("UPDATE ingest.sources SET options = $2::jsonb WHERE id = $1", sid,
                       json.dumps({"backfill_slices": slices}))  # fmt: skip
    return sid


async def test_sliced_backfill_with_faults_is_exact(pool: asyncpg.Pool) -> None:
    faults = Faults(latency_ms=2, error_rate=0.1, rate_limit_rate=0.05, retry_after_s=0.01,
                    garble_rate=0.05, duplicate_rate=0.3)  # fmt: skip
    sim = build(33, 1_500, malformed_rate=0.01, faults=faults)
    with serve_simulator(sim) as url:
        sid = await _sliced_source(pool, url, 4)
        engine = SyncEngine(pool, policy=FAST, workers=1)
        try:
            since = datetime.fromtimestamp(sim.clock, VN) - timedelta(days=400)
            result = await engine.run(sid, "dossiers", kind="backfill", since=since)
            assert result.status == "partial", result  # complete, some quarantined
            good, _ = expected(sim, sid)
            assert await stored(pool, sid) == good
            left = await pool.fetchval(
                "SELECT count(*) FROM ingest.checkpoints WHERE source_id = $1", sid
            )
            assert left == 0  # the slices' checkpoints go with the run
        finally:
            await engine.stop()


async def test_sliced_backfill_resumes_each_slice(pool: asyncpg.Pool) -> None:
    sim = build(34, 1_200, faults=Faults(latency_ms=20))
    with serve_simulator(sim) as url:
        sid = await _sliced_source(pool, url, 3)
        since = datetime.fromtimestamp(sim.clock, VN) - timedelta(days=400)
        engine = SyncEngine(pool, policy=FAST)
        run_id = await engine.start(sid, "dossiers", kind="backfill", since=since)
        for _ in range(500):  # a few pages committed in every slice, then stop
            pages = await pool.fetch(
                "SELECT pages FROM ingest.checkpoints WHERE source_id = $1 AND feed LIKE "
                "'dossiers#%'", sid,
            )  # fmt: skip
            if len(pages) == 3 and all(p["pages"] >= 2 for p in pages):
                break
            await asyncio.sleep(0.01)
        await engine.stop()
        first = await engine.result(run_id)
        assert first.status == "partial", first
        slices = await pool.fetch(
            "SELECT feed, cursor, pages FROM ingest.checkpoints WHERE source_id = $1 "
            "AND feed LIKE 'dossiers#%' ORDER BY feed", sid,
        )  # fmt: skip
        assert len(slices) == 3 and any(s["cursor"] for s in slices)

        again = SyncEngine(pool, policy=FAST)
        try:
            second = await again.run(sid, "dossiers")  # continues the interrupted backfill
            assert second.status == "succeeded", second
            assert first.pulled + second.pulled < 2 * len(sim.truth("dossiers"))  # no restart
            good, _ = expected(sim, sid)
            assert await stored(pool, sid) == good
        finally:
            await again.stop()
