"""The dossier view and the list show what each source sends beyond the scoring record: the
procedure, field and agency names, fees, supplements and processing steps (QuaTrinhXuLy, iGate's
task history, OpenCPS's actions), with Vietnamese names for statuses and coded values, pulled
through each connector from the simulator's dialect of the same generated data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from services.ingest.connectors.retry import RetryPolicy
from services.ingest.domain.names import status_name
from services.ingest.main import create_app
from services.ingest.simulator import Faults, build
from services.ingest.simulator.data import VN
from services.ingest.sync.engine import SyncEngine
from shared.settings import Settings, to_plain_url
from tests.conftest import running

from .conftest import serve_simulator
from .ingest_db import add_source

DIALECTS: dict[str, dict[str, Any]] = {
    "national-json": {
        "auth": {"type": "api_key", "header": "X-API-Key", "key": "demo-key"},
        "options": {},
    },
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


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(to_plain_url(database_url), min_size=1, max_size=4)
    yield p
    await p.close()


def _at(value: str) -> str | None:
    """A national `yyyyMMddHHmmss` (Vietnam time) as the API writes instants."""
    if not value:
        return None
    return datetime.strptime(value, "%Y%m%d%H%M%S").replace(tzinfo=VN).isoformat()


def _instant(value: str | None) -> str | None:
    return None if value is None else datetime.fromisoformat(value).isoformat()


def _rich(truth: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A dossier with a fee, a supplement request and several processing steps."""
    return next(
        r for r in truth.values()
        if r["DanhSachLePhi"] and r["DanhSachHoSoBoSung"] and len(r["QuaTrinhXuLy"]) >= 4
    )  # fmt: skip


@pytest.mark.parametrize("dialect", list(DIALECTS))
async def test_view_and_list_show_names_fees_supplements_and_steps(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]],
    pool: asyncpg.Pool, dialect: str,
) -> None:  # fmt: skip
    # duplicates and a clock that moves between pages: the stored details are those of the
    # version stored, not of a repeat
    sim = build(31, 500, faults=Faults(duplicate_rate=0.5))
    cfg = DIALECTS[dialect]
    with serve_simulator(sim) as url:
        sid = await add_source(pool, url, kind=dialect, auth=json.dumps(cfg["auth"]))
        await pool.execute("UPDATE ingest.sources SET options = $2::jsonb WHERE id = $1", sid,
                           json.dumps(cfg["options"]))  # fmt: skip
        engine = SyncEngine(pool, policy=RetryPolicy(attempts=3, base_s=0.01))
        try:
            assert (await engine.run(sid, "dossiers")).status == "succeeded"
        finally:
            await engine.stop()
    truth = sim.truth("dossiers")
    rec = _rich(truth)
    code = rec["MaHoSo"]
    app = create_app(make_settings(service_name="ingest", workers_enabled=False))
    async with running(app) as client:
        r = await client.get(f"/api/v1/dossiers/{code}", params={"source_id": sid},
                             headers=auth("admin"))  # fmt: skip
        assert r.status_code == 200, r.text
        view = r.json()
        assert view["procedure_name"] == rec["TenTTHC"]
        assert view["field_name"] == rec["TenLinhVuc"]
        assert view["source_agency_name"] == rec["TenDonVi"]
        assert [
            (f["code"], f["name"], f["amount"], f["method"], f["kind"]) for f in view["fees"]
        ] == [
            (f["MaPhiLePhi"], f["TenPhiLePhi"], f["Gia"], f["HinhThucThu"], f["LoaiPhiLePhi"])
            for f in rec["DanhSachLePhi"]
        ]
        for fee in view["fees"]:
            assert fee["method_name"] in ("Nộp trực tiếp", "Thanh toán trực tuyến")
            assert fee["kind_name"] in ("Lệ phí", "Phí")
        assert [
            (_instant(s["requested_at"]), _instant(s["received_at"]),
             _instant(s["previous_due_at"]), _instant(s["new_due_at"]))
            for s in view["supplements"]
        ] == [
            (_at(s["NgayYeuCauBoSung"]), _at(s["NgayTiepNhanBoSung"]),
             _at(s["NgayHenTraTruoc"]), _at(s["NgayHenTraMoi"]))
            for s in rec["DanhSachHoSoBoSung"]
        ]  # fmt: skip
        steps = view["steps"]
        assert [
            (_instant(s["at"]), s["officer"], s["position"], s["department"], s["action"],
             s["status"])
            for s in steps
        ] == [
            (_at(h["ThoiDiemXuLy"]), h["NguoiXuLy"], h["ChucDanh"], h["PhongBanXuLy"],
             h["NoiDungXuLy"], h["TrangThai"])
            for h in rec["QuaTrinhXuLy"]
        ]  # fmt: skip
        # statuses by name, in Vietnamese, whatever the vendor's own vocabulary
        assert [s["status_name"] for s in steps] == [
            status_name(h["TrangThai"]) for h in rec["QuaTrinhXuLy"]
        ]
        assert all(not s["status_name"][0].isdigit() for s in steps)

        r = await client.get("/api/v1/dossiers", params={"source_id": sid, "q": code},
                             headers=auth("admin"))  # fmt: skip
        assert r.status_code == 200, r.text
        (item,) = [i for i in r.json()["items"] if i["code"] == code]
        assert item["procedure_name"] == rec["TenTTHC"]
        assert item["source_agency_name"] == rec["TenDonVi"]
        assert item["fee_total"] == sum(f["Gia"] for f in rec["DanhSachLePhi"])
        assert item["supplement_count"] == len(rec["DanhSachHoSoBoSung"])
        last = rec["QuaTrinhXuLy"][-1]
        assert item["last_step"]["action"] == last["NoiDungXuLy"]
        assert item["last_step"]["status_name"] == status_name(last["TrangThai"])

        # every stored dossier shows the steps its source sent, no more, no fewer
        rows = await pool.fetch(
            "SELECT code, details FROM ingest.dossiers WHERE source_id = $1", sid
        )
        assert len(rows) == len(truth)
        for row in rows:
            kept = json.loads(row["details"])
            assert len(kept["QuaTrinhXuLy"]) == len(truth[row["code"]]["QuaTrinhXuLy"])


async def test_pushed_dossier_shows_its_steps_and_progress_adds_to_them(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]],
) -> None:  # fmt: skip
    """DongBoHoSoMC stores the steps, fees and supplements sent; a progress update
    (CapNhatTienDoHoSoMC) adds its new steps to them, and a repeat of it adds nothing."""
    import uuid

    sim = build(43, 300)
    rec = _rich(sim.truth("dossiers"))
    code, sid = rec["MaHoSo"], f"push-{uuid.uuid4().hex[:8]}"
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
        sent = {k: v for k, v in rec.items() if k != "NgayCapNhat"}  # a push carries none
        sent["QuaTrinhXuLy"] = rec["QuaTrinhXuLy"][:-1]
        r = await client.post(f"/api/v1/push/{sid}/DongBoHoSoMC", headers=service,
                              json={"session": "s1", "data": [sent]})  # fmt: skip
        assert r.status_code == 200 and r.json()["stored"] == 1, r.text
        view = (await client.get(f"/api/v1/dossiers/{code}", headers=admin)).json()
        assert [s["action"] for s in view["steps"]] == [
            h["NoiDungXuLy"] for h in rec["QuaTrinhXuLy"][:-1]
        ]
        assert [f["name"] for f in view["fees"]] == [f["TenPhiLePhi"] for f in rec["DanhSachLePhi"]]
        assert len(view["supplements"]) == len(rec["DanhSachHoSoBoSung"])

        last = rec["QuaTrinhXuLy"][-1]
        progress = {"MaHoSo": code, "TrangThaiHoSo": last["TrangThai"],
                    "NgayCapNhat": last["ThoiDiemXuLy"], "QuaTrinhXuLy": [last]}  # fmt: skip
        for _ in range(2):  # sent again: nothing new
            r = await client.post(f"/api/v1/push/{sid}/CapNhatTienDoHoSoMC", headers=service,
                                  json={"session": "s2", "data": [progress]})  # fmt: skip
            assert r.status_code == 200, r.text
        view = (await client.get(f"/api/v1/dossiers/{code}", headers=admin)).json()
        assert [s["action"] for s in view["steps"]] == [
            h["NoiDungXuLy"] for h in rec["QuaTrinhXuLy"]
        ]
        assert view["steps"][-1]["status_name"] == status_name(last["TrangThai"])
        assert len(view["fees"]) == len(rec["DanhSachLePhi"])  # kept from the first batch


def test_stored_details_read_safely_whatever_they_hold() -> None:
    """Odd stored values read as nothing rather than failing the view: an amount no float
    holds, a status code we do not know, steps that are not a list, text that is not JSON."""
    from services.ingest.domain.details import read_details

    doc = {
        "DanhSachLePhi": [{"Gia": 10**400, "HinhThucThu": 9, "LoaiPhiLePhi": True}, "x"],
        "QuaTrinhXuLy": [{"TrangThai": "chờ ký", "ThoiDiemXuLy": "không phải ngày"}, 3],
    }
    shown = read_details(json.dumps(doc), status_name)
    assert shown.fees == [{"code": None, "name": None, "amount": None, "method": 9,
                           "method_name": "Không rõ (9)", "kind": None,
                           "kind_name": "Không rõ (True)"}]  # fmt: skip
    assert [(s["status"], s["status_name"], s["at"]) for s in shown.steps] == [
        (None, "Không rõ (chờ ký)", None)
    ]
    for text in (None, "", "not json", "[1, 2]", json.dumps({"QuaTrinhXuLy": "abc"})):
        empty = read_details(text, status_name)
        assert (empty.fees, empty.supplements, empty.steps) == ([], [], [])
