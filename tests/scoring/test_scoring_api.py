"""The scoring HTTP API on the real PostgreSQL: snapshots with explanations, rankings, exports,
official scores, and officers confined to their own unit."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import openpyxl
import pytest
from sqlalchemy import text

from services.scoring.domain.alerts import load_alert_rules
from services.scoring.domain.periods import Period
from services.scoring.domain.profile import load_profile
from services.scoring.main import create_app
from services.scoring.recompute import Scoring, recompute, refresh_stale
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import UnitIn, import_units
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.outbox import Outbox
from shared.settings import Settings
from tests.conftest import running
from tests.scoring.test_scoring_store import TODAY, dossier, vn

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
Auth = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
async def tree(make_settings: Callable[..., Settings]) -> tuple[str, str, str]:
    """A committed province with two communes, facts for September 2026, snapshots."""
    settings = make_settings()
    p = "A" + uuid.uuid4().hex[:8]
    c1, c2 = f"{p}.C1", f"{p}.C2"
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            await import_units(s, [
                UnitIn(id=p, name="Tỉnh Thử", level="province", kind="tỉnh",
                       valid_from=date(2000, 1, 1)),
                UnitIn(id=c1, name="Xã Một", level="commune", kind="xã", parent_id=p,
                       valid_from=date(2000, 1, 1)),
                UnitIn(id=c2, name="Xã Hai", level="commune", kind="xã", parent_id=p,
                       valid_from=date(2000, 1, 1)),
            ])  # fmt: skip
            facts = [
                dossier(c1, 1),
                dossier(c1, 2, procedure_code="2.002", finished_at=vn(2026, 9, 15)),
                dossier(c1, 3, procedure_code="2.002", finished_at=vn(2026, 9, 16)),
                dossier(c1, 4, finished_at=vn(2026, 9, 17)),
                dossier(c2, 1),
                dossier(c2, 2, channel=2),
            ]
            await upsert_facts(s, facts, now=AS_OF)
            # the bundled rules on a handful of dossiers (their minimum volume has its own tests)
            rules = tuple(r.model_copy(update={"min_volume": 1}) for r in load_alert_rules().rules)
            ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"), alert_rules=rules)
            await recompute(s, ctx, [p, c1, c2], [Period.parse("202609")], AS_OF, today=TODAY)
    finally:
        await engine.dispose()
    return p, c1, c2


@pytest.fixture(scope="module")
def app(make_settings: Callable[..., Settings]) -> Any:
    return create_app(make_settings(service_name="scoring", workers_enabled=False))


async def test_snapshot_with_explanation(app: Any, auth: Auth, tree: tuple[str, str, str]) -> None:
    p, c1, _ = tree
    async with running(app) as client:
        r = await client.get(f"/api/v1/units/{c1}/scores/202609", headers=auth("viewer"))
        assert r.status_code == 200, r.text
        body = r.json()
        on_time = body["indicators"]["prog_on_time"]
        assert on_time["ratio"] == 0.25 and on_time["points"] == 5.0
        assert on_time["rule"] == "766@2:prog_on_time"
        assert on_time["external_code"] == "ON_TIME"
        ex = {e["indicator"]: e for e in body["explanation"]}
        # Vietnamese first, English beside, with the agency's name; a procedure without a
        # procedure fact (no TenTTHC known) is named by its code
        assert ex["prog_on_time"]["text"] == (
            "Tỷ lệ hồ sơ giải quyết đúng hạn, trong hạn: mất 15/20 điểm: 3 hồ sơ trễ hạn, "
            "67% trong số đó thuộc thủ tục 2.002 tại Xã Một"
        )
        assert ex["prog_on_time"]["text_en"] == (
            "Dossiers on time or within time: lost 15 of 20 points: 3 late dossiers, "
            "67% of them in procedure 2.002 at Xã Một"
        )
        assert "chỉ số" not in ex["prog_on_time"]["text"]
        # 766@2's sync base is the portal's counter (ours: every dossier received): its
        # breakdown still names the dossiers not synced
        assert ex["pub_synced"]["shortfall"] == 4
        assert "4 hồ sơ chưa đồng bộ lên Cổng DVCQG" in ex["pub_synced"]["text"]
        assert body["rank"] == 2
        assert set(body["freshness"]) >= {"last_event_at", "recompute_pending"}
        assert "publicity" not in body["not_applicable"]  # dossiers synced: 1.4 applies
        r = await client.get(f"/api/v1/units/{p}/scores/2026Q9", headers=auth("viewer"))
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
        r = await client.get(f"/api/v1/units/{p}/scores/202608", headers=auth("viewer"))
        assert r.status_code == 404


async def test_officer_sees_only_own_unit(app: Any, auth: Auth, tree: tuple[str, str, str]) -> None:
    p, c1, c2 = tree
    async with running(app) as client:
        officer = auth("officer", c1)
        assert (
            await client.get(f"/api/v1/units/{c1}/scores/202609", headers=officer)
        ).status_code == 200
        assert (
            await client.get(f"/api/v1/units/{c2}/scores/202609", headers=officer)
        ).status_code == 404
        assert (await client.get(f"/api/v1/units/{p}", headers=officer)).status_code == 404
        r = await client.get(
            "/api/v1/rankings", params={"period": "202609", "under": p}, headers=officer
        )
        assert [x["unit_id"] for x in r.json()] == [c1]
        units = await client.get("/api/v1/units", headers=officer)
        assert [u["id"] for u in units.json()] == [c1]


async def test_rankings_and_exports(app: Any, auth: Auth, tree: tuple[str, str, str]) -> None:
    p, c1, c2 = tree
    async with running(app) as client:
        h = auth("viewer")
        r = await client.get("/api/v1/rankings",
                             params={"period": "202609", "under": p, "level": "commune"},
                             headers=h)  # fmt: skip
        rows = r.json()
        assert [(x["unit_id"], x["rank"]) for x in rows] == [(c2, 1), (c1, 2)]
        # out of 100, with its peers, and how fresh the figures are
        assert rows[0]["max_total"] == 100 and rows[0]["peers"] == 2
        assert isinstance(rows[0]["recompute_pending"], bool)
        assert r.headers["X-Recompute-Pending"] in ("true", "false")
        r = await client.get("/api/v1/rankings",
                             params={"period": "202609", "under": p, "level": "commune",
                                     "indicator": "onl_dossiers"}, headers=h)  # fmt: skip
        assert [(x["unit_id"], x["value"]) for x in r.json()] == [(c2, 6.0), (c1, 0.0)]
        r = await client.get("/api/v1/exports/rankings.csv",
                             params={"period": "202609", "under": p}, headers=h)  # fmt: skip
        assert r.status_code == 200
        table = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert table[0][:3] == ["STT", "Tên cơ quan, đơn vị", "Nhóm xếp hạng"]
        assert "Tiến độ giải quyết (tối đa 20)" in table[0]
        assert table[0][-2] == "Xếp hạng trong nhóm"
        assert {row[1] for row in table[1:]} == {"Tỉnh Thử", "Xã Một", "Xã Hai"}
        r = await client.get("/api/v1/exports/rankings.xlsx",
                             params={"period": "202609", "under": p}, headers=h)  # fmt: skip
        wb = openpyxl.load_workbook(io.BytesIO(r.content))
        ws = wb.active
        assert ws is not None
        header = next(r for r in range(1, ws.max_row + 1) if ws.cell(r, 1).value == "STT")
        assert ws.cell(header, 2).value == "Tên cơ quan, đơn vị"
        assert [ws.cell(header + i, 2).value for i in (1, 2, 3)] == [row[1] for row in table[1:]]


async def test_rankings_read_figures_of_the_latest_snapshots(
    app: Any, auth: Auth, tree: tuple[str, str, str]
) -> None:
    """Values and group points in a ranking are the latest snapshots' (picked out in SQL);
    null values are unranked and last; an officer gets their own row with its peer rank."""
    p, c1, c2 = tree
    async with running(app) as client:
        h = auth("viewer")
        snaps = {}
        for u in (c1, c2):
            r = await client.get(f"/api/v1/units/{u}/scores/202609", headers=h,
                                 params={"explain": "false"})  # fmt: skip
            snaps[u] = r.json()
        base = {"period": "202609", "under": p, "level": "commune"}
        for key, item in (("group", "progress"), ("indicator", "prog_on_time"),
                          ("indicator", "dig_personal_store")):  # fmt: skip
            r = await client.get("/api/v1/rankings", params={**base, key: item}, headers=h)
            assert r.status_code == 200, r.text
            rows = r.json()
            figures = snaps[c1]["groups" if key == "group" else "indicators"]
            assert [x["unit_id"] for x in rows] == sorted(
                (c1, c2), key=lambda u: (
                    snaps[u]["groups" if key == "group" else "indicators"][item]["points"] is None,
                    -(snaps[u]["groups" if key == "group" else "indicators"][item]["points"] or 0),
                    u,
                ),
            )  # fmt: skip
            for x in rows:
                s = snaps[x["unit_id"]]
                fig = (s["groups"] if key == "group" else s["indicators"])[item]
                assert x["value"] == fig["points"]
                assert x["total"] == s["total"]
                assert x["groups"] == {g: v["points"] for g, v in s["groups"].items()}
                assert (x["rank"] is None) == (fig["points"] is None)
                assert x["previous_rank"] is None and x["rank_change"] is None
            if figures[item]["points"] is None:  # empty denominator: nobody ranked
                assert [x["rank"] for x in rows] == [None, None]
        r = await client.get("/api/v1/rankings", params={**base, "indicator": "prog_on_time"},
                             headers=auth("officer", c1))  # fmt: skip
        assert [(x["unit_id"], x["rank"]) for x in r.json()] == [(c1, 2)]
        r = await client.get("/api/v1/rankings", params={**base, "group": "nope"}, headers=h)
        assert r.status_code == 404


async def test_official_scores_differences(
    app: Any, auth: Auth, tree: tuple[str, str, str]
) -> None:
    _, c1, _ = tree
    async with running(app) as client:
        body = {"source": "portal", "scores": [
            {"unit_id": c1, "period": "202609", "item": "progress", "points": 6.0}]}  # fmt: skip
        r = await client.post("/api/v1/official-scores", json=body, headers=auth("viewer"))
        assert r.status_code == 403
        r = await client.post("/api/v1/official-scores", json=body, headers=auth("inspector"))
        assert r.status_code == 200 and r.json() == {"imported": 1}
        r = await client.get("/api/v1/official-scores/differences",
                             params={"period": "202609"}, headers=auth("viewer"))  # fmt: skip
        mine = [x for x in r.json() if x["unit_id"] == c1]
        assert mine[0]["official"] == 6.0 and mine[0]["ours"] == 5.0
        assert mine[0]["difference"] == -1.0


async def test_profiles_and_units(app: Any, auth: Auth, tree: tuple[str, str, str]) -> None:
    p, c1, _ = tree
    async with running(app) as client:
        h = auth("viewer")
        profs = (await client.get("/api/v1/profiles", headers=h)).json()
        assert {x["key"] for x in profs} >= {"766@1", "766-P21@1"}
        prof = (await client.get("/api/v1/profiles/766@1", headers=h)).json()
        assert len(prof["indicators"]) == 19
        par = await client.get("/api/v1/par-frameworks/2019", headers=h)
        assert par.json()["max_total"] == 100
        u = (await client.get(f"/api/v1/units/{c1}", headers=h)).json()
        assert u["path"] == f"/{p}/{c1}/"
        seeded = (await client.get("/api/v1/units/P21", headers=h)).json()
        assert {e["from_id"] for e in seeded["predecessors"]} == {"HYC", "TBC"}
        csv_text = (await client.get("/api/v1/units/export", headers=h)).text
        assert "P21.SNV,Sở Nội vụ,department" in csv_text
        r = await client.post("/api/v1/units/import", content=csv_text.encode(),
                              headers={**auth("admin"), "content-type": "text/csv"})  # fmt: skip
        assert r.status_code == 200 and r.json()["imported"] >= 178
        assert (await client.get("/api/v1/alerts", headers=h)).status_code == 200


async def test_par_index_entries_and_tree(
    app: Any, auth: Auth, tree: tuple[str, str, str], make_settings: Callable[..., Settings]
) -> None:
    p, c1, _ = tree
    async with running(app) as client:
        url = f"/api/v1/units/{c1}/par/2026"
        entry = {"points": 8.0, "evidence": "Báo cáo SIPAS 2026"}
        r = await client.put(f"{url}/entries/8.1", json=entry, headers=auth("officer", c1))
        assert r.status_code == 403
        r = await client.put(f"{url}/entries/8.1", json=entry, headers=auth("inspector"))
        assert r.status_code == 200, r.text
        too_much = {**entry, "points": 10.5}
        r = await client.put(f"{url}/entries/8.1", json=too_much, headers=auth("inspector"))
        assert r.status_code == 422
        r = await client.put(f"{url}/entries/3.4.1", json=entry, headers=auth("inspector"))
        assert r.status_code == 422  # metric-scored: cannot be typed in
        r = await client.get(url, headers=auth("officer", c1))
        body = r.json()
        assert body["framework"] == "par-2019"
        fields = {f["code"]: f for f in body["tree"]["children"]}
        assert fields["8"]["points"] == 8.0
        assert body["tree"]["points"] == 8.0
        # the province: one of its two communes has a finding from an inspection conclusion
        engine = make_engine(make_settings().async_database_url, schema="scoring", pool_size=1)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                await s.execute(
                    text(
                        "INSERT INTO scoring.remediation_items (item_id, unit_id, origin, status) "
                        "VALUES (:i, :u, 'conclusion', 'accepted')"
                    ),
                    {"i": f"it-{c1}", "u": c1},
                )
        finally:
            await engine.dispose()
        prov = (await client.get(f"/api/v1/units/{p}/par/2026", headers=auth("viewer"))).json()
        f1 = {c["code"]: c for c in prov["tree"]["children"]}["1"]
        leaves = {c["code"]: c for k in f1["children"] for c in k["children"]}
        assert leaves["1.3.1"]["value"] == 0.5 and leaves["1.3.1"]["points"] == 0.5
        assert leaves["1.3.2"]["value"] == 1.0 and leaves["1.3.2"]["points"] == 1.0


async def test_manual_counter_entry(
    app: Any, auth: Auth, tree: tuple[str, str, str], make_settings: Callable[..., Settings]
) -> None:
    p, c1, _ = tree
    async with running(app) as client:
        url = f"/api/v1/units/{c1}/counters/202609/pds_used"
        r = await client.put(url, json={"value": 3}, headers=auth("inspector"))
        assert r.status_code == 200, r.text
        base = f"/api/v1/units/{c1}/counters/202609/pds_base"
        assert (await client.put(base, json={"value": 4}, headers=auth("inspector"))).is_success
        bad = f"/api/v1/units/{c1}/counters/202609/received"
        assert (
            await client.put(bad, json={"value": 3}, headers=auth("inspector"))
        ).status_code == 404
        q = f"/api/v1/units/{c1}/counters/2026Q3/pds_used"
        assert (
            await client.put(q, json={"value": 3}, headers=auth("inspector"))
        ).status_code == 400
        assert (await client.put(url, json={"value": 3}, headers=auth("viewer"))).status_code == 403
        # the stale queue refreshes the commune and its province
        engine = make_engine(make_settings().async_database_url, schema="scoring", pool_size=2)
        try:
            async with transaction(make_sessionmaker(engine)) as s:
                # the personal data store's manual counters are the base of 766@1's indicator
                ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"),
                              profile=load_profile("766", 1))  # fmt: skip
                await refresh_stale(s, ctx, as_of=AS_OF)
        finally:
            await engine.dispose()
        for u in (c1, p):
            snap = (await client.get(f"/api/v1/units/{u}/scores/202609",
                                     params={"profile": "766@1"},
                                     headers=auth("viewer"))).json()  # fmt: skip
            assert snap["indicators"]["dig_personal_store"]["points"] == 3.0, u


async def test_series_and_alerts(app: Any, auth: Auth, tree: tuple[str, str, str]) -> None:
    p, c1, _ = tree
    async with running(app) as client:
        r = await client.get(f"/api/v1/units/{p}/series", params={"periods": "202608,202609"},
                             headers=auth("viewer"))  # fmt: skip
        series = r.json()
        assert [s["period"] for s in series] == ["202608", "202609"]
        assert series[0]["total"] is None and series[1]["total"] is not None
        assert series[1]["groups"]["progress"] == pytest.approx(20 * 3 / 6, abs=1e-4)
        alerts = await client.get("/api/v1/alerts", params={"period": "202609", "status": "open"},
                                  headers=auth("officer", c1))  # fmt: skip
        mine = alerts.json()
        assert mine and {a["unit_id"] for a in mine} == {c1}
        assert any(a["rule"] == "below_target" and a["indicator"] == "prog_on_time" for a in mine)
        # Vietnamese first, with the agency's name; English beside or by Accept-Language
        on_time = next(a for a in mine if a["indicator"] == "prog_on_time")
        assert on_time["message"].startswith("Xã Một, tháng 9/2026 — Tỷ lệ hồ sơ giải quyết")
        assert on_time["message_en"].startswith("Xã Một, September 2026 — Dossiers on time")
        assert on_time["period_kind"] == "month" and not on_time["in_progress"]
        english = await client.get("/api/v1/alerts",
                                   params={"period": "202609", "status": "open"},
                                   headers={**auth("officer", c1),
                                            "Accept-Language": "en-GB,en;q=0.9,vi;q=0.5"})  # fmt: skip
        en = next(a for a in english.json() if a["alert_id"] == on_time["alert_id"])
        assert en["message"] == on_time["message_en"] and en["message_vi"] == on_time["message"]
