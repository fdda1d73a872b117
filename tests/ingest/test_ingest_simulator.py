"""The one-stop simulator: determinism, realistic distributions, clock, paging, auth, faults."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from services.ingest.simulator import Faults, build
from services.ingest.simulator.app import create_app
from services.ingest.simulator.data import DAY, parse_ts

KEY = {"X-API-Key": "demo-key"}


def test_same_seed_same_data_other_seed_other_data() -> None:
    a, b, c = build(7, 2_000), build(7, 2_000), build(8, 2_000)
    assert a.truth("dossiers") == b.truth("dossiers")
    assert a.truth("petitions") == b.truth("petitions")
    assert a.truth("procedures") == b.truth("procedures")
    assert a.page("dossiers", updated_since=None, cursor=None, limit=100, agency=None) == b.page(
        "dossiers", updated_since=None, cursor=None, limit=100, agency=None
    )
    assert a.truth("dossiers") != c.truth("dossiers")


def test_distributions_are_plausible() -> None:
    sim = build(42, 10_000)
    recs = list(sim.truth("dossiers").values())
    agencies = {a.code: a for a in sim.data.agencies}
    current = sim.data.agencies[: sim.data.current_agencies]  # then the dissolved ones
    assert {a.level for a in current} == {"province", "department", "commune"}
    assert all(r["MaDonVi"] in agencies for r in recs)
    assert len({r["MaHoSo"] for r in recs}) == len(recs)
    channels = Counter(r["KenhThucHien"] for r in recs)
    assert 0.25 < channels[2] / len(recs) < 0.7
    finished = [r for r in recs if r["NgayKetThucXuLy"]]
    late = [r for r in finished if r["NgayKetThucXuLy"] > r["NgayHenTra"]]
    assert 0.02 < len(late) / len(finished) < 0.2
    apologised = [r for r in recs if r["DanhSachPhieuXinLoi"]]
    assert apologised and all(len(r["DanhSachPhieuXinLoi"]) == 1 for r in apologised)
    assert all(r in late or not r["NgayKetThucXuLy"] for r in apologised)
    assert 0.03 < sum(1 for r in recs if r["DanhSachHoSoBoSung"]) / len(recs) < 0.2
    assert any(r["DuocThanhToanTrucTuyen"] == 1 for r in recs)
    assert any(r["DuocThanhToanTrucTuyen"] == 2 for r in recs)
    assert {r["TrangThaiHoSo"] for r in recs} >= {3, 4, 7, 8, 9, 10}
    # The last event of the processing history is the update time.
    assert all(r["QuaTrinhXuLy"][-1]["ThoiDiemXuLy"] == r["NgayCapNhat"] for r in recs)
    petitions = list(sim.truth("petitions").values())
    assert any(p["DanhGiaHaiLong"] == 1 for p in petitions)
    assert any(p["NgayXuLy"] == "" for p in petitions)
    levels = Counter(p["MucDoDVC"] for p in sim.truth("procedures").values())
    assert set(levels) == {2, 3, 4}


def test_advancing_the_clock_moves_dossiers_on() -> None:
    sim = build(42, 5_000)
    before = sim.truth("dossiers")
    sim.advance(7 * DAY)
    after = sim.truth("dossiers")
    assert set(before) < set(after)  # new dossiers appeared, none vanished
    changed = [c for c in before if before[c] != after[c]]
    assert changed
    assert all(after[c]["NgayCapNhat"] > before[c]["NgayCapNhat"] for c in changed)
    assert all(before[c]["NgayCapNhat"] <= after[c]["NgayCapNhat"] for c in before)


def test_malformed_records_are_deterministic() -> None:
    sim = build(42, 3_000, malformed_rate=0.02)
    bad = sim.malformed_codes()
    assert len(bad) > 30
    assert set(bad.values()) == {
        "unknown_agency",
        "missing_code",
        "nul_byte",
        "date_before_2000",
        "date_in_future",
        "received_after_finished",
        "bad_status",
    }
    assert bad == build(42, 3_000, malformed_rate=0.02).malformed_codes()


async def _walk(client: httpx.AsyncClient, feed: str, limit: int, **params: str) -> list[dict]:
    out: list[dict] = []
    cursor = None
    while True:
        q = {"limit": str(limit), **params}
        if cursor:
            q["cursor"] = cursor
        r = await client.get(f"/api/v1/{feed}", params=q, headers=KEY)
        assert r.status_code == 200, r.text
        body = r.json()
        out.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out


async def test_paging_is_complete_ordered_and_filterable() -> None:
    sim = build(42, 3_000)
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        items = await _walk(client, "dossiers", 137)
        truth = sim.truth("dossiers")
        assert [i["MaHoSo"] for i in items] == list(truth)  # complete, no repeats
        keys = [(i["NgayCapNhat"], i["MaHoSo"]) for i in items]
        assert keys == sorted(keys)
        since = items[len(items) // 2]["NgayCapNhat"]
        later = await _walk(client, "dossiers", 200, updated_since=since)
        assert {i["MaHoSo"] for i in later} == {
            c for c, r in truth.items() if r["NgayCapNhat"] >= since
        }
        agency = items[0]["MaDonVi"]
        one = await _walk(client, "dossiers", 50, agency=agency)
        assert one and all(i["MaDonVi"] == agency for i in one)
        assert len(one) == sum(1 for r in truth.values() if r["MaDonVi"] == agency)
        assert len(await _walk(client, "petitions", 40)) == len(sim.truth("petitions"))
        bad = await client.get("/api/v1/dossiers", params={"cursor": "%%%"}, headers=KEY)
        assert bad.status_code == 400
        landing = await client.get("/")
        assert landing.status_code == 200 and "simulator" in landing.text


async def test_auth_api_key_and_oauth2() -> None:
    sim = build(1, 200)
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        assert (await client.get("/api/v1/dossiers")).status_code == 401
        assert (await client.get("/api/v1/dossiers", headers={"X-API-Key": "x"})).status_code == 401
        bad = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "cchc-monitor",
                "client_secret": "wrong",
            },
        )
        assert bad.status_code == 401
        tok = await client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "cchc-monitor",
                "client_secret": "demo-secret",
            },
        )
        bearer = {"Authorization": f"Bearer {tok.json()['access_token']}"}
        assert (await client.get("/api/v1/dossiers", headers=bearer)).status_code == 200


async def test_fault_knobs() -> None:
    sim = build(1, 500)
    transport = httpx.ASGITransport(app=create_app(sim))
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        r = await client.post(
            "/admin/faults", json={"rate_limit_rate": 1, "retry_after_s": 7}, headers=KEY
        )
        assert r.status_code == 200
        r = await client.get("/api/v1/dossiers", headers=KEY)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
        sim.faults = Faults(error_rate=1)
        assert (await client.get("/api/v1/dossiers", headers=KEY)).status_code in (500, 502, 503)
        sim.faults = Faults(garble_rate=1)
        r = await client.get("/api/v1/dossiers", headers=KEY)
        with pytest.raises(json.JSONDecodeError):
            json.loads(r.content)
        sim.faults = Faults(duplicate_rate=1)
        first = (await client.get("/api/v1/dossiers", params={"limit": 10}, headers=KEY)).json()
        second = (
            await client.get(
                "/api/v1/dossiers",
                params={"limit": 10, "cursor": first["next_cursor"]},
                headers=KEY,
            )
        ).json()
        assert {i["MaHoSo"] for i in first["items"]} & {i["MaHoSo"] for i in second["items"]}
        sim.faults = Faults(advance_per_page_s=3600)
        clock = sim.clock
        await client.get(
            "/api/v1/dossiers", params={"limit": 10, "cursor": first["next_cursor"]}, headers=KEY
        )
        assert sim.clock == clock + 3600
        state = (await client.get("/admin/state", headers=KEY)).json()
        assert parse_ts(state["clock"]) == sim.clock


def test_pregenerated_pages_are_the_served_pages() -> None:
    sim = build(3, 2_000)
    pages = sim.pregenerate("dossiers", 300)
    n = len(sim.index("dossiers").keys)
    assert pages == -(-n // 300)
    assert len(sim._pages) == pages
    body = json.loads(sim.page("dossiers", updated_since=None, cursor=None, limit=300, agency=None))
    assert len(body["items"]) == 300
