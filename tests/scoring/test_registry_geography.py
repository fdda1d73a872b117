"""The shipped registry is the real administrative geography (issue 12).

Checked against the pinned packages it is generated from (vietnam-provinces: the 34 provinces
and 3,321 communes in force since 1 July 2025; vietnam-address-converter: the old→new mapping),
and on the real PostgreSQL: a 2024 figure of a merged commune is the weighted sum of its
predecessors', and the weights an official sets stand.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_address_converter.data import DEFAULT_DATA
from vietnam_provinces import Province, Ward

from services.scoring.domain.periods import VN_TZ, Period
from services.scoring.main import create_app
from services.scoring.recompute import Scoring, default_profile, recompute
from services.scoring.store.counters import period_counters
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import SEED_PATH, LineageIn, UnitIn, import_units, seed_units
from services.scoring.store.snapshots import list_rankings
from services.tasks.domain.units import UnitDirectory
from shared.db import make_engine, make_sessionmaker
from shared.events.outbox import Outbox
from shared.events.payloads import DossierRecord
from shared.settings import Settings
from tests.conftest import running

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
ON = date(2026, 1, 1)


@pytest.fixture(scope="module")
def registry() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SEED_PATH.read_bytes())
    return data


def valid_on(u: dict[str, Any], on: date) -> bool:
    return date.fromisoformat(u["valid_from"]) <= on and (
        u["valid_to"] is None or on <= date.fromisoformat(u["valid_to"])
    )


def test_provinces_and_communes_on_2026_01_01_are_the_published_ones(
    registry: dict[str, Any],
) -> None:
    units = [u for u in registry["units"] if valid_on(u, ON)]
    provinces = {u["external_codes"]["gso"]: u for u in units if u["level"] == "province"}
    communes = {u["external_codes"]["gso"]: u for u in units if u["level"] == "commune"}
    assert len(provinces) == 34 and len(communes) == 3321
    for p in Province.iter_all():
        u = provinces[f"{int(p.code):02d}"]
        # the package names a tỉnh without its type word ("Hưng Yên"), a city with it
        assert u["name"] in (p.name, f"Tỉnh {p.name}")
    by_id = {u["id"]: u for u in units}
    for w in Ward.iter_all():
        u = communes[f"{int(w.code):05d}"]
        # as published, NFC, with runs of spaces made one ("Xã  Bắc Đông Quan" in 2025.10.1)
        assert u["name"] == " ".join(w.name.split()) and u["kind"] == w.division_type.value
        assert by_id[u["parent_id"]]["external_codes"]["gso"] == f"{int(w.province_code):02d}"
    assert by_id["P21"]["name"] == "Tỉnh Hưng Yên"
    assert sum(1 for u in communes.values() if u["parent_id"] == "P21") == 104
    versions = registry["data_versions"]
    assert versions["vietnam-provinces"]["package"] == "2025.10.1"
    assert (
        versions["vietnam-address-converter"]["mapping"]
        == DEFAULT_DATA["mapping"]["meta"]["version"]
    )


def test_every_old_ward_of_the_mapping_has_a_successor_and_weights_sum_to_one(
    registry: dict[str, Any],
) -> None:
    by_code = {
        u["external_codes"]["vnac-old"]: u
        for u in registry["units"]
        if "vnac-old" in u["external_codes"]
    }
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in registry["lineage"]:
        out[e["from_id"]].append(e)
    wards = {
        r["old"]["ward_code"] for r in DEFAULT_DATA["mapping"]["rows"] if r["old"]["ward_code"]
    }
    assert len(wards) > 10_000
    units = {u["id"]: u for u in registry["units"]}
    for code in wards:
        ward = by_code[f"W{code}"]
        assert ward["valid_to"] == "2025-06-30"
        edges = out[ward["id"]]
        assert edges, ward
        assert all(valid_on(units[e["to_id"]], ON) for e in edges)
    for old, edges in out.items():
        if units[old]["level"] == "department":
            continue  # a department's split edge of weight 0 routes functions, not figures
        assert sum(e["weight"] for e in edges) == pytest.approx(1.0, abs=1e-9), old
    # one old ward split between two new communes gives each half of it
    split = next(e for e in registry["lineage"] if e["kind"] == "split_into")
    assert 0 < split["weight"] < 1


def test_a_department_merged_in_march_2025_resolves_to_its_successor(
    registry: dict[str, Any],
) -> None:
    d = UnitDirectory(registry)
    after = date(2025, 5, 20)
    assert d.resolve("Sở Thông tin và Truyền thông", on=after) is None
    old = d.resolve("Sở Thông tin và Truyền thông", on=date(2025, 2, 1))
    assert old is not None and old.id == "P21.STTTT"
    assert [(u.id, w) for u, w in d.successors_on(old.id, after)] == [("P21.SKHCN", 1.0)]
    assert d.successors_on("P21.SKHDT", after)[0][0].name == "Sở Tài chính"
    assert d.successors_on("P21.SGTVT", after)[0][0].id == "P21.SXD"
    assert {u.id for u, _ in d.successors_on("P21.STNMT", after)} == {"P21.SNNMT"}
    assert d.successors_on("P21.BDT", after)[0][0].name == "Sở Dân tộc và Tôn giáo"
    # every province has the standard set and its centre
    assert d.get("P05.TTPVHCC") is not None and d.get("P05.SNNMT") is not None
    # an old ward resolves to the commune(s) that replaced it, for a document of 2026
    ward = next(u for u in d.units.values() if u.parent_id == "HYC.D02")
    successors = d.successors_on(ward.id, date(2026, 3, 1))
    assert successors and all(u.parent_id == "P21" for u, _ in successors)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncSession]:
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    async with make_sessionmaker(engine)() as session:
        await session.begin()
        try:
            yield session
        finally:
            await session.rollback()
    await engine.dispose()


def dossier(unit_id: str, n: int, month: int) -> DossierRecord:
    return DossierRecord(
        source_id="geo-test",
        code=f"{uuid.uuid4().hex[:8]}-{n}",
        unit_id=unit_id,
        procedure_code="1.001",
        channel=1,
        status=10,
        received_at=datetime(2024, month, 2, 9, tzinfo=VN_TZ),
        due_at=datetime(2024, month, 10, 9, tzinfo=VN_TZ),
        finished_at=datetime(2024, month, 5 if n % 3 else 20, 9, tzinfo=VN_TZ),
        source_updated_at=datetime(2024, month, 21, 9, tzinfo=VN_TZ),
    )


async def test_a_2024_figure_of_a_merged_commune_is_the_weighted_sum_of_its_predecessors(
    db: AsyncSession, registry: dict[str, Any]
) -> None:
    await seed_units(db)
    edges: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in registry["lineage"]:
        edges[e["to_id"]].append(e)
    # a new commune built from several old wards, one of them split with another commune (no
    # ward of the demo province was split: the first such commune, in Cà Mau)
    commune = next(
        cid
        for cid, es in sorted(edges.items())
        if sum(1 for e in es if e["from_id"].startswith("OW")) >= 2
        and any(e["weight"] < 1 for e in es if e["from_id"].startswith("OW"))
    )
    preds = {e["from_id"]: e["weight"] for e in edges[commune] if e["from_id"].startswith("OW")}
    facts = [
        dossier(ward, n, month)
        for i, ward in enumerate(sorted(preds))
        for n in range(1, 3 + i)
        for month in (3, 9)
    ]
    await upsert_facts(db, facts, now=AS_OF)
    y2024 = Period.parse("2024")
    got = await period_counters(db, [commune, *preds], y2024, AS_OF)
    for counter in ("received", "finished", "finished_late"):
        expected = sum(w * got[ward].get(counter, 0.0) for ward, w in preds.items())
        assert got[commune].get(counter, 0.0) == pytest.approx(expected), counter
    assert got[commune]["received"] < sum(got[w]["received"] for w in preds)  # a share only
    # the province counts each old ward whole, once
    pid = commune.split(".")[0]
    province = await period_counters(db, [pid], y2024, AS_OF)
    assert province[pid]["received"] == sum(got[w]["received"] for w in preds)
    # an official's weight overrides the derived one, and a re-seed keeps it
    split = next(w for w, weight in preds.items() if weight < 1)
    await db.execute(
        text("""UPDATE scoring.unit_lineage SET weight = 1, weight_source = 'official'
                WHERE from_id = :f AND to_id = :t"""),
        {"f": split, "t": commune},
    )
    await seed_units(db)
    after = await period_counters(db, [commune, *preds], y2024, AS_OF)
    weights = {**preds, split: 1.0}
    expected = sum(w * after[ward]["received"] for ward, w in weights.items())
    assert after[commune]["received"] == pytest.approx(expected)


async def test_units_api_searches_by_name_code_and_date_and_takes_official_weights(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]
) -> None:
    app = create_app(make_settings(service_name="scoring", workers_enabled=False))
    async with running(app) as client:
        h = auth("viewer")
        found = (await client.get(
            "/api/v1/units", params={"q": "phuong hoan kiem", "on": "2026-01-01"}, headers=h
        )).json()  # fmt: skip
        assert [u["name"] for u in found] == ["Phường Hoàn Kiếm"]
        assert found[0]["external_codes"]["gso"] == "00070"
        by_code = (await client.get("/api/v1/units", params={"code": "00070"}, headers=h)).json()
        assert [u["name"] for u in by_code] == ["Phường Hoàn Kiếm"]
        # the same name before the reorganisation is an old ward (abolished 2025-06-30)
        old = (await client.get(
            "/api/v1/units", params={"q": "Hoàn Kiếm", "on": "2024-06-01", "level": "district"},
            headers=h,
        )).json()  # fmt: skip
        assert [u["name"] for u in old] == ["Quận Hoàn Kiếm"]
        ward = (await client.get("/api/v1/units/P21.STTTT", headers=h)).json()
        assert [(e["to_id"], e["weight"]) for e in ward["successors"]] == [("P21.SKHCN", 1.0)]
        p21 = (await client.get("/api/v1/units/P21.SKHCN", headers=h)).json()
        assert {e["from_id"] for e in p21["predecessors"]} == {"P21.STTTT"}
        # an official's weights: they must be successors and sum to 1
        split = "P21.SLDTBXH"
        bad = await client.put(f"/api/v1/units/{split}/successor-weights",
                               json={"weights": {"P21.SYT": 0.5}}, headers=auth("admin"))  # fmt: skip
        assert bad.status_code == 400 and "sum to 1" in bad.json()["detail"]
        assert (await client.put(f"/api/v1/units/{split}/successor-weights",
                                 json={"weights": {"P21.SNV": 1.0}},
                                 headers=auth("viewer"))).status_code == 403  # fmt: skip
        ok = await client.put(
            f"/api/v1/units/{split}/successor-weights",
            json={"weights": {"P21.SNV": 0.6, "P21.SYT": 0.4}, "note": "Theo chức năng"},
            headers=auth("admin"),
        )
        assert ok.status_code == 200
        assert {(e["to_id"], e["weight"], e["weight_source"]) for e in ok.json()} == {
            ("P21.SNV", 0.6, "official"),
            ("P21.SYT", 0.4, "official"),
        }


async def test_tasks_directory_from_its_table_carries_successors_in_registry_order(
    settings: Settings,
) -> None:
    """tasks_0005 seeded the tasks service's copy: the directory built from it resolves a
    shared name to the demo province's unit and a merged department to its successor."""
    from services.tasks.store import repo

    engine = make_engine(settings.async_database_url, schema="tasks", pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            d = await repo.unit_directory(session)
            again = await repo.unit_directory(session)
    finally:
        await engine.dispose()
    assert again is d  # built once per version of the table
    assert len(d.units) >= 14_000
    snv = d.resolve("Sở Nội vụ", on=date(2026, 1, 1))
    assert snv is not None and snv.id == "P21.SNV"
    assert [u.id for u, _ in d.successors_on("P21.STTTT", date(2025, 3, 1))] == ["P21.SKHCN"]
    # the successors and their weights, kept once in tasks.unit_lineage (tasks_0011), are the
    # shipped file's: an old ward split between communes keeps each share
    shipped = UnitDirectory.load()
    edges = {uid: sorted((s.id, s.kind, s.weight) for s in u.successors)
             for uid, u in shipped.units.items() if u.successors}  # fmt: skip
    assert any(w != 1.0 for es in edges.values() for _, _, w in es)
    assert {uid: sorted((s.id, s.kind, s.weight) for s in d.units[uid].successors)
            for uid in edges} == edges  # fmt: skip
    unit = d.get("P01")
    assert unit is not None and unit.external_codes.get("dvcqg") == "H26"
    # collective addressees expand within the home province (and the two merged into it), with
    # the units valid on the document's date — not across the country's 3,321 communes
    assert d.home_province == "P21"
    today, before = date(2026, 1, 1), date(2024, 6, 1)
    depts = d.expand_group("departments", on=today)
    assert len(depts) == 14 and all(u.startswith("P21.") for u in depts)
    assert len(d.expand_group("communes", on=today)) == 104
    old_wards = d.expand_group("communes", on=before)
    assert old_wards and {(d.units[u].parent_id or "")[:4] for u in old_wards} == {"HYC.", "TBC."}
    assert len(d.expand_group("districts", on=before)) == 18
    assert "P21.STTTT" in d.expand_group("departments", on=before)


def test_the_shipped_file_is_what_the_generator_makes_from_the_pinned_packages(
    tmp_path: Path,
) -> None:
    """units.json is regenerated, not edited: the generator run on the pinned packages gives
    the committed file byte for byte (a data release is a regenerated, reviewed diff)."""
    spec = importlib.util.spec_from_file_location(
        "make_reference_units", SEED_PATH.parents[2] / "scripts" / "make_reference_units.py"
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    out = tmp_path / "units.json"
    generator.main(out)
    assert out.read_bytes() == SEED_PATH.read_bytes()


async def test_a_2025_ranking_keeps_abolished_wards_apart_from_their_successors(
    db: AsyncSession,
) -> None:
    """2025 straddles the reorganisation: the old ward (valid to 30 June) and the new commune
    built from it both have a 2025 scorecard, the new one including the old one's first half
    (lineage); they rank in different peer groups, not against each other."""
    tag = uuid.uuid4().hex[:8]
    p, old, new = f"R{tag}", f"R{tag}.OW", f"R{tag}.C"
    await import_units(
        db,
        [
            UnitIn(id=p, name=p, level="province", kind="tỉnh", valid_from=date(2000, 1, 1)),
            UnitIn(
                id=old,
                name="Xã Cũ",
                level="commune",
                kind="xã",
                parent_id=p,
                valid_from=date(2000, 1, 1),
                valid_to=date(2025, 6, 30),
            ),
            UnitIn(
                id=new,
                name="Xã Mới",
                level="commune",
                kind="xã",
                parent_id=p,
                valid_from=date(2025, 7, 1),
            ),
        ],
        [
            LineageIn(
                from_id=old,
                to_id=new,
                kind="merged_into",
                effective_on=date(2025, 7, 1),
                carries="self",
            )
        ],
    )

    def at(unit: str, n: int, month: int) -> DossierRecord:
        return DossierRecord(
            source_id="geo-rank", code=f"{unit}-{n}", unit_id=unit, procedure_code="1.001",
            channel=1, status=10, received_at=datetime(2025, month, 2, 9, tzinfo=VN_TZ),
            due_at=datetime(2025, month, 10, 9, tzinfo=VN_TZ),
            finished_at=datetime(2025, month, 5, 9, tzinfo=VN_TZ),
            source_updated_at=datetime(2025, month, 21, 9, tzinfo=VN_TZ),
        )  # fmt: skip

    await upsert_facts(db, [at(old, 1, 3), at(old, 2, 4), at(new, 1, 9)], now=AS_OF)
    ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"), alert_rules=())
    y2025 = Period.parse("2025")
    await recompute(db, ctx, [p, old, new], [y2025], AS_OF)
    counters = await period_counters(db, [old, new], y2025, AS_OF)
    assert counters[old]["received"] == 2 and counters[new]["received"] == 3
    rows = await list_rankings(db, "2025", default_profile().key, "commune", p)
    groups = {r["unit_id"]: (r["peer_group"], r["rank"]) for r in rows}
    assert groups[old][0] != groups[new][0]
    assert groups[old][1] == 1 and groups[new][1] == 1
