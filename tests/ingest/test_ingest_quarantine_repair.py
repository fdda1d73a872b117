"""The simulator's invalid-records fault fills the quarantine; once the agency mapping is fixed,
re-processing stores those dossiers and resolves their entries (the demo's repair path)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.simulator import Faults, build
from services.ingest.simulator.dialects import IGATE_UNKNOWN_STATUS, OPENCPS_UNKNOWN_STATUS
from services.ingest.simulator.state import UNMAPPED_AGENCY
from services.ingest.sync.engine import SyncEngine, reprocess_quarantine
from shared.settings import to_plain_url

from .conftest import serve_simulator
from .ingest_db import add_source, event_records, expected, stored


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


VENDORS: dict[str, dict[str, Any]] = {
    "vnpt-igate": {
        "auth": {"type": "oauth2_client_credentials", "token_url": "/oauth/token",
                 "client_id": "cchc-monitor", "client_secret": "demo-secret"},
        "options": {}, "status": IGATE_UNKNOWN_STATUS["id"],
    },
    "opencps": {
        "auth": {"type": "basic", "username": "cchc-monitor", "password": "demo-secret"},
        "options": {"group_id": "35417"}, "status": OPENCPS_UNKNOWN_STATUS,
    },
}  # fmt: skip


@pytest.mark.parametrize("workers", [0, 1], ids=["in-process", "worker-process"])
@pytest.mark.parametrize("dialect", list(VENDORS))
async def test_unknown_vendor_status_is_repaired_from_the_record_as_sent(
    pool: asyncpg.Pool, make_settings: Any, auth: Any, dialect: str, workers: int
) -> None:
    """A vendor status the connector's vocabulary lacks quarantines the record with the record
    as the vendor sent it; once the source's status_map names that status, re-processing
    translates the kept record again and stores it: announced once, and neither a second
    re-processing nor the next pull announces it again."""
    from services.ingest.main import create_app
    from tests.conftest import running

    cfg = VENDORS[dialect]
    sim = build(14, 800, faults=Faults(unknown_status_rate=0.2))
    admin = auth("admin")
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, kind=dialect, auth=json.dumps(cfg["auth"]))
        await pool.execute("UPDATE ingest.sources SET options = $2::jsonb WHERE id = $1", sid,
                           json.dumps(cfg["options"]))  # fmt: skip
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=2, base_s=0.01), workers=workers)
        app = create_app(make_settings(service_name="ingest", workers_enabled=False))
        try:
            first = await engine.run(sid, "dossiers")
            assert first.status == "partial" and first.quarantined >= 5, first
            good, bad = expected(sim, sid)
            assert not bad  # the source's dossiers are all valid: only the mapping is missing
            held = await pool.fetch(
                "SELECT code, reasons, source_raw FROM ingest.quarantine "
                "WHERE source_id = $1 AND status = 'open'", sid,
            )  # fmt: skip
            assert held and all(r["reasons"] == [f"invalid_status:{cfg['status']}"] for r in held)
            codes = {r["code"] for r in held}
            assert set(await stored(pool, sid)) == set(good) - codes
            async with running(app) as client:
                r = await client.get("/api/v1/quarantine", headers=admin,
                                     params={"source_id": sid, "limit": 500})  # fmt: skip
                listed = r.json()
                assert {q["code"] for q in listed} == codes
                # the record as the vendor sent it, its own status in it
                sent = listed[0]["source_raw"]
                status = sent["dossierStatus"]
                assert (status["id"] if isinstance(status, dict) else status) == cfg["status"]

                # Re-processing before the mapping is fixed changes nothing.
                r = await client.post("/api/v1/quarantine/reprocess", headers=admin,
                                      json={"source_id": sid})  # fmt: skip
                assert r.json()["resolved"] == 0 and r.json()["still_rejected"] == len(codes)

                # A map to no national status is refused, naming the field.
                for wrong in ({str(cfg["status"]): 11}, {str(cfg["status"]): "4"}, ["x"]):
                    r = await client.patch(f"/api/v1/sources/{sid}", headers=admin,
                                           json={"options": {"status_map": wrong}})  # fmt: skip
                    assert r.status_code == 422 and "options" in r.text, r.text
                # The operator maps the deployment's status, then re-processes.
                r = await client.patch(f"/api/v1/sources/{sid}", headers=admin, json={
                    "options": {**cfg["options"], "status_map": {str(cfg["status"]): 4}}})  # fmt: skip
                assert r.status_code == 200, r.text
                r = await client.post("/api/v1/quarantine/reprocess", headers=admin,
                                      json={"source_id": sid})  # fmt: skip
                out = r.json()
                assert out["resolved"] == out["stored"] == len(codes), out
                assert out["still_rejected"] == 0
            assert await stored(pool, sid) == good  # exactly the source's dossiers

            def announced() -> Any:
                return event_records(pool, sid)

            events = await announced()
            assert sorted(c for c, _ in events if c in codes) == sorted(codes)  # once each
            again = await reprocess_quarantine(engine, sid, "dossiers")
            assert again["reprocessed"] == 0
            sim.advance(60)
            # the next pull (its look-back re-reads the newest) now maps the status itself
            later = await engine.run(sid, "dossiers")
            assert later.status == "succeeded", later
            assert sorted(c for c, _ in await announced() if c in codes) == sorted(codes)
            assert await stored(pool, sid) == expected(sim, sid)[0]
        finally:
            await engine.stop()
