"""The national synchronisation push: a one-stop system sends DongBoHoSoMC batches (repeated,
overlapping, some malformed) and progress updates; the end state is the source's exact dossier
set stored once each, every change announced once, invalid records quarantined."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest

from services.ingest.main import create_app
from services.ingest.simulator import build
from shared.settings import Settings, to_plain_url
from tests.conftest import running

from .ingest_db import add_source, event_records, expected, stored


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=2)
    yield p
    await p.close()


def _batch(data: list[Any], session: str, service: str = "DongBoHoSoMC") -> dict[str, Any]:
    return {"session": session, "madonvi": "000.00.12.H33", "service": service,
            "isUpdating": False, "data": data}  # fmt: skip


async def test_push_batches_repeated_and_malformed_end_with_the_exact_set(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool,
) -> None:  # fmt: skip
    sim = build(41, 600, malformed_rate=0.03)
    truth = list(sim.truth("dossiers").values())
    sid = f"push-{uuid.uuid4().hex[:8]}"
    admin, service = auth("admin"), auth("service")
    app = create_app(make_settings(service_name="ingest", workers_enabled=False))
    async with running(app) as client:
        r = await client.post("/api/v1/sources", headers=admin, json={
            "id": sid, "name": "Hưng Yên (đồng bộ)", "kind": "national-push",
            "base_url": "https://motcua.example.gov.vn",
            "auth": {"type": "api_key", "key": "unused-for-push"},
            "agencies_from_registry": "demo-igate", "feeds": ["dossiers"],
        })  # fmt: skip
        assert r.status_code == 201, r.text
        url = f"/api/v1/push/{sid}/DongBoHoSoMC"

        # Who may push: a service (or admin) token; nobody anonymous, no agency officer.
        assert (await client.post(url, json=_batch(truth[:5], "x"))).status_code == 401
        officer = auth("officer", "P21.SNV")
        assert (
            await client.post(url, json=_batch(truth[:5], "x"), headers=officer)
        ).status_code == 403

        # Malformed batches: a clear problem, nothing stored.
        for malformed in ({"session": "b1", "data": "not a list"}, {"session": "b2"},
                          {"session": "b3", "data": [{}] * 5001}):  # fmt: skip
            r = await client.post(url, json=malformed, headers=service)
            assert r.status_code == 422 and r.headers["content-type"].startswith(
                "application/problem+json"
            ), r.text
        r = await client.post(url, content=b"{not json", headers={**service,
                              "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 422
        r = await client.post(url, json={**_batch([], "b4"), "service": "CapNhatTienDoHoSoMC"},
                              headers=service)  # fmt: skip
        assert r.status_code == 422
        assert await pool.fetchval("SELECT count(*) FROM ingest.dossiers WHERE source_id = $1",
                                   sid) == 0  # fmt: skip

        # Batches of 150 overlapping by 50, each sent twice (a retried sync), and items that
        # are not objects at all.
        acks = []
        for n, start in enumerate(range(0, len(truth), 100)):
            data = truth[start : start + 150] + (["garbage", 7] if n == 0 else [])
            for _ in range(2):
                r = await client.post(url, json=_batch(data, f"s{n}"), headers=service)
                assert r.status_code == 200, r.text
                acks.append(r.json())
        # The same batch again (a sync retrying after a lost answer): the first
        # acknowledgement, replayed, and no second run.
        assert acks[1] == {**acks[0], "replayed": True} and acks[0]["replayed"] is False
        assert acks[0]["received"] == 152 and acks[0]["quarantined"] >= 2
        assert acks[0]["error_code"] == 0 and acks[0]["message"].startswith("Đã nhận 152 hồ sơ")
        runs = await pool.fetchval("SELECT count(*) FROM ingest.runs WHERE source_id = $1", sid)
        assert runs == len(acks) // 2
        # The same records under another session: a new batch, stored nothing new.
        r = await client.post(url, json=_batch(truth[:150], "s0-bis"), headers=service)
        again = r.json()
        assert (again["replayed"], again["stored"]) == (False, 0)
        assert again["unchanged"] == acks[0]["stored"] and again["run_id"] != acks[0]["run_id"]
        # Two identical batches at once: one stores, the other replays its answer.
        twins = await asyncio.gather(*(
            client.post(url, json=_batch(truth[:3], "twin"), headers=service) for _ in range(2)
        ))  # fmt: skip
        bodies = sorted((t.json() for t in twins), key=lambda a: a["replayed"])
        assert [t.status_code for t in twins] == [200, 200]
        assert bodies[1] == {**bodies[0], "replayed": True}

        good, bad = expected(sim, sid)
        assert await stored(pool, sid) == good
        events = await event_records(pool, sid)
        assert len(events) == len(set(events)) == len(good)  # each stored, and announced, once
        rows = await pool.fetch(
            "SELECT code, reasons FROM ingest.quarantine WHERE source_id = $1 AND status = 'open'",
            sid,
        )
        named = {c for c, k in sim.malformed_codes().items() if k != "missing_code"}
        assert {r["code"] for r in rows} - {None} == named & bad
        assert any("not_an_object" in r["reasons"] for r in rows)

        # A record without NgayCapNhat is stamped with its latest instant: the same record
        # sent again is a repeat, not a new version.
        plain = {k: v for k, v in good_raw(truth, good).items() if k != "NgayCapNhat"}
        code = plain["MaHoSo"] = plain["MaHoSo"] + "-DB"
        r1 = (await client.post(url, json=_batch([plain], "p1"), headers=service)).json()
        r2 = (await client.post(url, json=_batch([plain], "p2"), headers=service)).json()
        assert (r1["stored"], r1["quarantined"]) == (1, 0), r1
        assert (r2["stored"], r2["unchanged"]) == (0, 1), r2

        # Progress: status and end date over the stored dossier; again = nothing; a dossier
        # never sent is quarantined until its record comes.
        before = await pool.fetchrow(
            "SELECT status, version, source_updated_at FROM ingest.dossiers "
            "WHERE source_id = $1 AND code = $2", sid, code,
        )  # fmt: skip
        progress = {"MaHoSo": code, "TrangThaiHoSo": 9, "NgayKetThucXuLy": "20990101000000"}
        purl = f"/api/v1/push/{sid}/CapNhatTienDoHoSoMC"
        r = await client.post(purl, json=_batch([progress], "u0", "CapNhatTienDoHoSoMC"),
                              headers=service)  # fmt: skip
        assert r.json()["quarantined"] == 1  # a date in the future: rejected, not stored
        progress["NgayKetThucXuLy"] = sim_now(sim)
        progress["NgayCapNhat"] = sim_now(sim)
        for i in range(2):
            r = await client.post(
                purl, json=_batch([progress, {"MaHoSo": "khong-co", "TrangThaiHoSo": 4,
                                              "NgayCapNhat": sim_now(sim)}],
                                  f"u{i + 1}", "CapNhatTienDoHoSoMC"),
                headers=service,
            )  # fmt: skip
            ack = r.json()
            assert r.status_code == 200 and ack["stored"] == (1 if i == 0 else 0), (ack, before)
            assert ack["rejected"][0]["reasons"] == ["unknown_dossier"]
        after = await pool.fetchrow(
            "SELECT status, version, finished_at FROM ingest.dossiers "
            "WHERE source_id = $1 AND code = $2", sid, code,
        )  # fmt: skip
        assert after["status"] == 9 and after["version"] == before["version"] + 1
        assert after["finished_at"] is not None

        # A pulled source does not take pushes.
        pulled = await add_source(pool, "http://127.0.0.1:9")
        r = await client.post(f"/api/v1/push/{pulled}/DongBoHoSoMC",
                              json=_batch(truth[:1], "z"), headers=service)  # fmt: skip
        assert r.status_code == 422


def good_raw(truth: list[dict[str, Any]], good: dict[str, Any]) -> dict[str, Any]:
    """A valid record that is still being processed (status 4)."""
    return next(r for r in truth if r["MaHoSo"] in good and r["TrangThaiHoSo"] == 4)


def sim_now(sim: Any) -> str:
    from services.ingest.simulator.data import fmt

    return fmt(sim.clock)
