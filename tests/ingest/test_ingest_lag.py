"""Lag is measured on the source's own clock: the newest NgayCapNhat we hold against the time
the source reported (national `server_time`), per feed run and on the source."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

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


VENDORS: dict[str, dict[str, object]] = {
    "vnpt-igate": {
        "auth": {"type": "oauth2_client_credentials", "token_url": "/oauth/token",
                 "client_id": "cchc-monitor", "client_secret": "demo-secret"},
        "options": {},
    },
    "opencps": {
        "auth": {"type": "basic", "username": "cchc-monitor", "password": "demo-secret"},
        "options": {"group_id": "35417"},
    },
}  # fmt: skip


@pytest.mark.parametrize("dialect", list(VENDORS))
async def test_vendor_lag_is_against_the_source_http_date(
    pool: asyncpg.Pool, dialect: str, make_settings: Any, auth: Any
) -> None:
    """iGate and OpenCPS pages carry no time of their own: lag is measured against the HTTP
    Date header of the source's answers (here an hour ahead of its data's clock), and the
    run and the source say so; a source sending no Date falls back to our clock, saying so."""
    import json

    from services.ingest.main import create_app
    from services.ingest.simulator import Faults
    from tests.conftest import running

    skew = 3_600
    sim = build(19, 400, faults=Faults(clock_skew_s=skew))
    cfg = VENDORS[dialect]
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, kind=dialect, auth=json.dumps(cfg["auth"]))
        await pool.execute("UPDATE ingest.sources SET options = $2::jsonb WHERE id = $1", sid,
                           json.dumps(cfg["options"]))  # fmt: skip
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.01))
        try:
            result = await engine.run(sid, "dossiers")
            assert result.status == "succeeded", result
            source_clock = datetime.fromtimestamp(sim.clock + skew, VN)
            run = await pool.fetchrow(
                "SELECT lag_s, lag_clock FROM ingest.runs WHERE id = $1", result.run_id
            )
            assert run["lag_clock"] == "http_date"
            assert run["lag_s"] == pytest.approx((source_clock - _newest(sim)).total_seconds())
            assert skew <= run["lag_s"] < skew + 86_400  # not months: not our clock
            app = create_app(make_settings(service_name="ingest", workers_enabled=False))
            async with running(app) as client:
                r = await client.get(f"/api/v1/sources/{sid}", headers=auth("admin"))
                assert r.status_code == 200, r.text
                shown = r.json()
                assert shown["lag_clock"] == "http_date" and shown["lag_s"] == run["lag_s"]
                assert datetime.fromisoformat(shown["source_time"]) == source_clock
                r = await client.get(f"/api/v1/runs/{result.run_id}", headers=auth("admin"))
                assert r.json()["lag_clock"] == "http_date"

            # No Date header at all: our clock, and the run says so.
            sim.faults = Faults(date_header=False)
            sim.advance(600)
            again = await engine.run(sid, "dossiers")
            assert again.status == "succeeded", again
            run = await pool.fetchrow(
                "SELECT lag_s, lag_clock FROM ingest.runs WHERE id = $1", again.run_id
            )
            assert run["lag_clock"] == "local"
            ours = (datetime.now(VN) - _newest(sim)).total_seconds()
            assert run["lag_s"] == pytest.approx(ours, abs=300)
        finally:
            await engine.stop()
