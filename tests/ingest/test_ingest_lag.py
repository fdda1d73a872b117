"""Lag is measured on the source's own clock: the newest NgayCapNhat we hold against the time
the source reported (national `server_time`), per feed run and on the source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.simulator import build
from services.ingest.simulator.data import VN
from services.ingest.sync.engine import SyncEngine
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import add_source


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


def _newest(sim: object) -> datetime:
    stamps = [r["NgayCapNhat"] for r in sim.truth("dossiers").values()]  # type: ignore[attr-defined]
    return datetime.strptime(max(stamps), "%Y%m%d%H%M%S").replace(tzinfo=VN)


async def test_lag_is_against_the_source_clock(pool: asyncpg.Pool) -> None:
    sim = build(17, 600)  # its clock is a fixed date in 2026, not today
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url)
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.01))
        try:
            result = await engine.run(sid, "dossiers")
            assert result.status == "succeeded", result
            clock = datetime.fromtimestamp(sim.clock, VN)
            want = (clock - _newest(sim)).total_seconds()
            lag = await pool.fetchval("SELECT lag_s FROM ingest.runs WHERE id = $1", result.run_id)
            assert lag == pytest.approx(want) and 0 <= lag < 86_400
            src = await pool.fetchrow(
                "SELECT source_time, newest_seen FROM ingest.sources WHERE id = $1", sid
            )
            assert src["source_time"] == clock and src["newest_seen"] == _newest(sim)

            # The source moves on two hours with nothing new in the last one: the lag grows
            # on its clock, whatever ours says.
            sim.advance(7_200)
            again = await engine.run(sid, "dossiers")
            clock = datetime.fromtimestamp(sim.clock, VN)
            lag = await pool.fetchval("SELECT lag_s FROM ingest.runs WHERE id = $1", again.run_id)
            assert lag == pytest.approx((clock - _newest(sim)).total_seconds())
        finally:
            await engine.stop()
