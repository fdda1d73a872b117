"""The simulator's invalid-records fault fills the quarantine; once the agency mapping is fixed,
re-processing stores those dossiers and resolves their entries (the demo's repair path)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.simulator import Faults, build
from services.ingest.simulator.state import UNMAPPED_AGENCY
from services.ingest.sync.engine import SyncEngine, reprocess_quarantine
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import add_source, expected, stored


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


async def test_invalid_records_are_quarantined_then_repaired(pool: asyncpg.Pool) -> None:
    sim = build(12, 1_000, faults=Faults(invalid_rate=0.05))
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url)
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.01))
        try:
            result = await engine.run(sid, "dossiers")
            assert result.status == "partial" and result.quarantined > 10, result
            rows = await pool.fetch(
                "SELECT code, reasons FROM ingest.quarantine WHERE source_id = $1 "
                "AND status = 'open'", sid,
            )  # fmt: skip
            assert rows and all(r["reasons"] == [f"unknown_agency:{UNMAPPED_AGENCY}"] for r in rows)
            good, bad = expected(sim, sid)
            assert {r["code"] for r in rows} == bad
            assert await stored(pool, sid) == good

            # Reprocessing before the fix changes nothing; after it, every entry resolves.
            before = await reprocess_quarantine(engine, sid, "dossiers")
            assert before["resolved"] == 0 and before["still_rejected"] == len(rows)
            await pool.execute(
                "UPDATE ingest.sources SET agencies = agencies || $2::jsonb WHERE id = $1",
                sid, json.dumps({UNMAPPED_AGENCY: "P21.SNV"}),
            )  # fmt: skip
            after = await reprocess_quarantine(engine, sid, "dossiers")
            assert after["resolved"] == len(rows) and after["still_rejected"] == 0
            repaired = await pool.fetch(
                "SELECT code, unit_id FROM ingest.dossiers WHERE source_id = $1 "
                "AND code = ANY($2::text[])", sid, list(bad),
            )  # fmt: skip
            assert {r["code"] for r in repaired} == bad
            assert {r["unit_id"] for r in repaired} == {"P21.SNV"}
            assert not await pool.fetchval(
                "SELECT count(*) FROM ingest.quarantine WHERE source_id = $1 AND status = 'open'",
                sid,
            )
        finally:
            await engine.stop()
