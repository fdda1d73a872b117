"""Concurrent syncs never wedge ingest, and readiness tells when it is wedged (issue 16 item 7).

A run holds its lock connection for its life and needs another to write pages: with both from
one pool, as many concurrent runs as connections used to deadlock for good (runs `running` with
0 pages, the schedule stopped, manual syncs unanswered, /readyz still ready).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest

from services.ingest.main import create_app
from services.ingest.runtime import engine as sync_engine
from services.ingest.simulator import Faults, build
from services.ingest.sync.engine import SyncEngine
from shared.settings import Settings, to_plain_url
from tests.conftest import running
from tests.support.kafka import eventually

from .conftest import serve_simulator
from .ingest_db import add_source


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=2)
    yield p
    await p.close()


async def test_more_concurrent_runs_than_connections_all_finish(database_url: str) -> None:
    """Six runs at once on an engine whose only pool has three connections."""
    sim = build(61, 400, faults=Faults(latency_ms=10))
    small = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=3)
    eng = SyncEngine(small, start_wait_s=120)
    try:
        with serve_simulator(sim) as url:
            sids = [await add_source(small, url, page_size=50) for _ in range(6)]
            async with asyncio.timeout(120):  # a wedge would hang here
                results = await asyncio.gather(*(eng.run(s, "dossiers") for s in sids))
            assert [r.status for r in results] == ["succeeded"] * 6
            assert len({(r.pages, r.stored) for r in results}) == 1 and results[0].stored > 300
            assert eng.max_runs == 2  # one below the pool: a page writer always gets one
    finally:
        await eng.stop()
        await small.close()


async def _ready(client: httpx.AsyncClient) -> tuple[int, dict[str, bool]]:
    r = await client.get("/readyz")
    return r.status_code, r.json()["checks"]


async def test_concurrent_manual_syncs_answer_finish_and_the_schedule_goes_on(
    make_settings: Callable[..., Settings],
    auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {"INGEST_DB_POOL_SIZE": "2", "INGEST_MAX_RUNS": "2",
                       "INGEST_START_WAIT_S": "0.3", "INGEST_SCHEDULER_TICK_S": "0.2",
                       "INGEST_POOL_PROBE_S": "0.3"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    admin = auth("admin")
    sim = build(62, 300, faults=Faults(latency_ms=20))
    with serve_simulator(sim) as url:
        sids = [await add_source(pool, url, page_size=50) for _ in range(6)]
        # only this test's sources are scheduled by the service it starts
        await pool.execute("UPDATE ingest.sources SET enabled = (id = ANY($1))", sids)
        try:
            app = create_app(make_settings(service_name="ingest"))
            async with running(app) as client:
                async with asyncio.timeout(30):  # every request answers, none hangs
                    answers = await asyncio.gather(
                        *(client.post(f"/api/v1/sources/{s}/sync", json={}, headers=admin)
                          for s in sids)
                    )  # fmt: skip
                codes = sorted(a.status_code for a in answers)
                # two run slots: the others are told to come back (or found the scheduler's run)
                assert set(codes) <= {202, 409, 503} and 202 in codes, [a.text for a in answers]
                assert all(
                    a.headers["content-type"].startswith("application/problem+json")
                    for a in answers if a.status_code != 202
                )  # fmt: skip

                async def all_done() -> bool:
                    n = await pool.fetchval(
                        "SELECT count(DISTINCT source_id) FROM ingest.runs "
                        "WHERE source_id = ANY($1) AND status = 'succeeded'",
                        sids,
                    )
                    return bool(n == len(sids))

                # the schedule picks up every refused one
                assert await eventually(all_done, timeout=90), "not every source was synced"
                assert await pool.fetchval(
                    "SELECT count(*) FROM ingest.runs WHERE source_id = ANY($1) "
                    "AND status = 'running'", sids,
                ) == 0  # fmt: skip
                status, checks = await _ready(client)
                assert status == 200 and checks["sync_engine"] is True

                # a wedged pool is reported: every work connection held elsewhere
                eng = sync_engine(app.state.runtime)
                held = [await eng.pool.acquire() for _ in range(eng.pool.get_max_size())]
                try:
                    status, checks = await _ready(client)
                    assert status == 503 and checks["sync_engine"] is False
                finally:
                    for conn in held:
                        await eng.pool.release(conn)
                status, checks = await _ready(client)
                assert status == 200 and checks["sync_engine"] is True
        finally:
            await pool.execute("UPDATE ingest.sources SET enabled = true")


async def test_readiness_reports_a_run_that_commits_nothing(
    make_settings: Callable[..., Settings],
    auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("INGEST_STALL_S", "0.5")
    monkeypatch.setenv("INGEST_RETRY_ATTEMPTS", "1")
    sim = build(63, 100, faults=Faults(hang_rate=1, hang_s=4))
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, id=f"hang-{uuid.uuid4().hex[:6]}", timeout_s=5.0)
        app = create_app(make_settings(service_name="ingest", workers_enabled=False))
        async with running(app) as client:
            r = await client.post(f"/api/v1/sources/{sid}/sync", json={}, headers=auth("admin"))
            assert r.status_code == 202
            # (no broker in this app: readiness is 503 anyway, the engine's check is what counts)
            _, first = await _ready(client)  # the run is seen with 0 pages
            assert first["sync_engine"] is True
            await asyncio.sleep(1.0)
            status, checks = await _ready(client)
            assert status == 503 and checks["sync_engine"] is False
            await sync_engine(app.state.runtime).stop()
