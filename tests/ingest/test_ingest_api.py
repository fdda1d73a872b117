"""The ingest HTTP API end to end: sources, sync trigger, runs, dossier tracking, quarantine."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from services.ingest.domain.normalise import VN
from services.ingest.main import create_app
from services.ingest.simulator import Faults, build
from services.ingest.store.pages import write_page
from shared.events.payloads import DossierRecord
from shared.settings import Settings, to_plain_url
from tests.conftest import running

from .conftest import serve_simulator
from .ingest_db import add_source


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=2)
    yield p
    await p.close()


async def _wait_run(client: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> dict:
    for _ in range(300):
        run = (await client.get(f"/api/v1/runs/{run_id}", headers=headers)).json()
        if run["status"] != "running":
            return run
        await asyncio.sleep(0.1)
    raise AssertionError("run did not finish")


async def test_sources_sync_runs_tracking_and_quarantine(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]
) -> None:
    sim = build(31, 800, malformed_rate=0.03, faults=Faults(latency_ms=15))
    admin = auth("admin")
    sid = f"hy-{uuid.uuid4().hex[:8]}"
    app = create_app(make_settings(service_name="ingest", workers_enabled=False))
    with serve_simulator(sim) as url:
        async with running(app) as client:
            body: dict[str, Any] = {
                "id": sid, "name": "Hưng Yên iGate", "base_url": url,
                "auth": {"type": "api_key", "key": "demo-key"},
                "agencies_from_registry": "demo-igate", "feeds": ["dossiers"],
                "page_size": 100, "rate_limit_per_s": 500,
            }  # fmt: skip
            r = await client.post("/api/v1/sources", json=body, headers=admin)
            assert r.status_code == 201, r.text
            assert "demo-key" not in r.text and r.json()["auth"] == {
                "type": "api_key", "header": "X-API-Key", "username": None, "token_url": None,
                "client_id": None,
                "scope": None,
            }  # fmt: skip
            assert r.json()["agencies"]["000.02.00.H33"] == "P21.SNV"
            again = await client.post("/api/v1/sources", json=body, headers=admin)
            assert again.status_code == 409
            assert again.headers["content-type"].startswith("application/problem+json")
            viewer = await client.post("/api/v1/sources", json=body, headers=auth("viewer"))
            assert viewer.status_code == 403
            bad_kind = await client.patch(f"/api/v1/sources/{sid}", json={"kind": "nope"},
                                          headers=admin)  # fmt: skip
            assert bad_kind.status_code == 422
            listed = await client.get("/api/v1/sources", headers=admin)
            assert sid in {s["id"] for s in listed.json()} and "demo-key" not in listed.text

            for bad in (
                {"kind": "backfill"},
                {
                    "kind": "backfill",
                    "since": "2026-05-01T00:00:00Z",
                    "until": "2026-04-01T00:00:00Z",
                },
            ):
                r = await client.post(f"/api/v1/sources/{sid}/sync", json=bad, headers=admin)
                assert r.status_code == 422, r.text
            missing = await client.post("/api/v1/sources/nope/sync", json={}, headers=admin)
            assert missing.status_code == 404
            started = await client.post(f"/api/v1/sources/{sid}/sync", json={}, headers=admin)
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            busy = await client.post(f"/api/v1/sources/{sid}/sync", json={}, headers=admin)
            assert busy.status_code == 409
            run = await _wait_run(client, run_id, admin)
            assert run["status"] == "partial" and run["quarantined"] > 0 and run["stored"] > 0
            runs = await client.get("/api/v1/runs", params={"source_id": sid}, headers=admin)
            assert [x["id"] for x in runs.json()] == [run_id]

            # Track a dossier whose status moved, as its own agency's officer.
            good = [d for d in sim.truth("dossiers").values()
                    if len({h["TrangThai"] for h in d["QuaTrinhXuLy"]}) > 3
                    and d["MaHoSo"] not in sim.malformed_codes()]  # fmt: skip
            code = good[0]["MaHoSo"]
            r = await client.get(f"/api/v1/dossiers/{code}", headers=admin)
            assert r.status_code == 200, r.text
            dossier = r.json()
            assert dossier["history"] and dossier["history"][0]["previous_status"] is None
            assert dossier["status"] == good[0]["TrangThaiHoSo"]
            mine = await client.get(f"/api/v1/dossiers/{code}",
                                    headers=auth("officer", dossier["unit_id"]))  # fmt: skip
            assert mine.status_code == 200
            other = await client.get(f"/api/v1/dossiers/{code}",
                                     headers=auth("officer", "P21.NOPE"))  # fmt: skip
            assert other.status_code == 404
            assert (await client.get("/api/v1/dossiers/nope", headers=admin)).status_code == 404

            # Quarantine: listable with reasons and raw payload; reprocessing keeps bad ones.
            q = await client.get("/api/v1/quarantine", params={"source_id": sid}, headers=admin)
            entries = q.json()
            assert entries and all(e["reasons"] for e in entries)
            assert all(isinstance(e["raw"], dict) for e in entries)
            agency = await client.get("/api/v1/quarantine", headers=admin, params={
                "source_id": sid, "reason": "unknown_agency"})  # fmt: skip
            assert agency.json() and all(any(x.startswith("unknown_agency") for x in e["reasons"])
                       for e in agency.json())  # fmt: skip
            rep = await client.post("/api/v1/quarantine/reprocess", headers=admin,
                                    json={"source_id": sid})  # fmt: skip
            assert rep.status_code == 200 and rep.json()["still_rejected"] == len(entries)

            metrics = (await client.get("/metrics")).text
            assert f'ingest_records_total{{feed="dossiers",outcome="stored",source="{sid}"}}' in \
                metrics  # fmt: skip
            assert "ingest_source_errors_total" in metrics or "ingest_run_duration" in metrics
            deleted = await client.delete(f"/api/v1/sources/{sid}", headers=admin)
            assert deleted.status_code == 204
            assert (await client.get(f"/api/v1/sources/{sid}", headers=admin)).status_code == 404


async def test_tracking_returns_the_complete_status_trail(
    pool: asyncpg.Pool, make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]
) -> None:
    """Only transitions are stored; the trail still starts with the first stored status (and
    when it began), then every change in order. Same-status and stale versions add nothing."""
    sid = await add_source(pool, "http://unused")
    code = f"T-{uuid.uuid4().hex[:8]}"
    t1 = datetime(2026, 4, 8, 9, 0, tzinfo=VN)
    h = timedelta(hours=1)

    async def store(status: int, at: datetime) -> int:
        rec = DossierRecord(
            source_id=sid, code=code, unit_id="P21.SNV", procedure_code="1.001", channel=1,
            status=status, source_updated_at=at,
        )  # fmt: skip
        async with pool.acquire() as conn:
            result = await write_page(
                conn, source_id=sid, feed="dossiers", run_id="trail", event_source="/test",
                records=[rec], rejections=[], next_cursor=None, checkpoint=False,
            )  # fmt: skip
        return result.stored

    assert await store(2, t1) == 1  # received
    assert await store(2, t1 + h) == 1  # a newer version, same status
    assert await store(4, t1 + 2 * h) == 1  # in progress
    assert await store(9, t1 - h) == 0  # stale: changes nothing
    assert await store(9, t1 + 5 * h) == 1  # finished
    assert await store(9, t1 + 5 * h) == 0  # repeated
    rows = await pool.fetch(
        "SELECT status, previous_status FROM ingest.dossier_status_history WHERE code = $1", code
    )
    assert sorted(tuple(r) for r in rows) == [(4, 2), (9, 4)]  # transitions only

    app = create_app(make_settings(service_name="ingest", workers_enabled=False))
    async with running(app) as client:
        r = await client.get(f"/api/v1/dossiers/{code}", headers=auth("admin"))
        assert r.status_code == 200, r.text
    dossier = r.json()
    assert dossier["status"] == 9 and dossier["version"] == 4
    trail = [
        (e["status"], e["previous_status"], datetime.fromisoformat(e["source_updated_at"]))
        for e in dossier["history"]
    ]
    assert trail == [(2, None, t1), (4, 2, t1 + 2 * h), (9, 4, t1 + 5 * h)]
    assert all(e["recorded_at"] for e in dossier["history"])
