"""Official scores beside ours: ingest's portal connector reads the (simulated) national
portal's reporting API and announces what it published; scoring stores it; the differences
endpoint shows per metric official vs ours and which input differs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from services.ingest.connectors.base import ApiKeyAuth, ConnectorConfig
from services.ingest.connectors.portal766 import REPORTS, Portal766Connector
from services.ingest.main import create_app as create_ingest
from services.ingest.simulator import build
from services.scoring.domain.periods import Period
from services.scoring.domain.profile import load_profile
from services.scoring.events.handlers import make_official_handler
from services.scoring.main import create_app as create_scoring
from services.scoring.recompute import Scoring, recompute
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.budget import in_parts
from shared.events.envelope import CloudEvent
from shared.events.outbox import Outbox
from shared.events.payloads import (
    DossierRecord,
    OfficialGroup,
    OfficialMetric,
    OfficialScoresPublished,
    OfficialUnitScores,
)
from shared.settings import Settings, to_plain_url
from tests.conftest import running
from tests.ingest.conftest import serve_simulator
from tests.scoring.test_scoring_store import dossier, tree, vn

V2 = load_profile("766", 2)


async def test_connector_reads_every_report_of_the_simulated_portal() -> None:
    sim = build(31, 800)
    with serve_simulator(sim) as url:
        c = Portal766Connector(
            ConnectorConfig(kind="portal-766", base_url=url, auth=ApiKeyAuth(key="demo-key"))
        )
        try:
            units = await c.fetch_scores(root_department_id="root", year=2026)
        finally:
            await c.aclose()
    root = next(u for u in units if u.parent_code is None)
    assert len(units) == len(sim.data.agencies) and len(REPORTS) == 7
    # every group and every one of the 27 metrics, merged from the seven reports
    assert set(root.groups) == {"CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"}
    assert {m for m in root.metrics} == {i.external_code for i in V2.indicators}
    assert root.total is not None and root.total_max == 100
    on_time = root.metrics["ON_TIME"]
    assert on_time.numerator is not None and on_time.denominator and on_time.score is not None
    assert root.metrics["FULL"].score is None  # published without metric points, as the portal
    assert root.metrics["RECEIVED"].value == on_time.denominator
    published = sum(s for s, _ in root.groups.values() if s is not None)
    assert published == pytest.approx(root.total, abs=0.011)


async def test_ingest_announces_the_portals_scores(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]], database_url: str
) -> None:
    sim = build(31, 800)
    sid = f"portal-{uuid.uuid4().hex[:8]}"
    app = create_ingest(make_settings(service_name="ingest", workers_enabled=False))
    admin = auth("admin")
    with serve_simulator(sim) as url:
        async with running(app) as client:
            body: dict[str, Any] = {
                "id": sid, "name": "Cổng DVCQG (simulator)", "base_url": url,
                "auth": {"type": "api_key", "key": "demo-key"},
                "agencies_from_registry": "demo-igate", "feeds": [],
            }  # fmt: skip
            assert (await client.post("/api/v1/sources", json=body, headers=admin)).is_success
            path = f"/api/v1/sources/{sid}/official-scores"
            pull = {"root_department_id": "root", "year": 2026}
            assert (await client.post(path, json=pull, headers=auth("viewer"))).status_code == 403
            bad = await client.post(path, json={**pull, "time_type": "quarter"}, headers=admin)
            assert bad.status_code == 422
            missing = await client.post(f"/api/v1/sources/nope-{sid}/official-scores",
                                        json=pull, headers=admin)  # fmt: skip
            assert missing.status_code == 404
            r = await client.post(path, json=pull, headers=admin)
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["period"] == "2026" and out["units"] > 0
    conn = await asyncpg.connect(to_plain_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT payload FROM ingest.outbox WHERE type = $1 AND subject = $2",
            OfficialScoresPublished.event_type, f"{sid}/2026",
        )  # fmt: skip
    finally:
        await conn.close()
    # announced in parts that each fit a broker message (1 MB by default), every unit once
    assert all(len(r["payload"].encode()) < 1_000_000 for r in rows)
    events = [OfficialScoresPublished.model_validate(json.loads(r["payload"])) for r in rows]
    announced = [u.unit_id for e in events for u in e.units]
    assert len(announced) == len(set(announced)) == out["units"]
    unit = events[0].units[0]
    assert unit.unit_id.startswith("P21") and len(unit.metrics) == 27
    assert {g.code for g in unit.groups} == {"CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH"}


def _published(unit_id: str) -> OfficialScoresPublished:
    """What the portal published for one commune, September 2026: on time over a different
    denominator (received, not finished + open), online dossiers with one more in the
    numerator, sync with our exact counts but other points."""
    metrics = [
        OfficialMetric(code="ON_TIME", numerator=3, denominator=5, ratio=60, score=12, max=20),
        OfficialMetric(code="ONLINE_DOSSIERS", numerator=2, denominator=4, ratio=50),
        OfficialMetric(code="DOSSIER_SYNC", numerator=0, denominator=4, ratio=0, score=1.5, max=6),
        OfficialMetric(code="RECEIVED", value=4),
    ]
    return OfficialScoresPublished(
        source_id="portal", source="Cổng DVCQG 2026-10-08", period="202609",
        fetched_at=datetime(2026, 10, 8, tzinfo=UTC),
        units=[OfficialUnitScores(unit_id=unit_id, external_code="H33.100", total=55.0,
                                  total_max=100, groups=[OfficialGroup(code="TDGQ", score=12,
                                                                       max=20)],
                                  metrics=metrics)],
    )  # fmt: skip


PUBLISHED_ON = datetime(2026, 10, 8, tzinfo=UTC)


async def scored_and_published(
    settings: Settings,
    facts: Callable[[str], list[DossierRecord]],
    published: Callable[[str, str], OfficialScoresPublished],
) -> tuple[str, str, str]:
    """A province with two communes; c1's `facts` scored for September 2026 under 766@2, then
    the portal's publication (`published(c1, c2)`) announced as ingest would. (p, c1, c2)."""
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    try:
        async with transaction(make_sessionmaker(engine)) as s:
            p, c1, c2 = await tree(s)
            await upsert_facts(s, facts(c1), now=PUBLISHED_ON)
            ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"), profile=V2)
            await recompute(s, ctx, [c1], [Period.parse("202609")], PUBLISHED_ON,
                            today=PUBLISHED_ON.date())  # fmt: skip
            payload = published(c1, c2)
            event = CloudEvent.of(payload, source="/cchc-monitor/ingest", subject="portal/202609")
            await make_official_handler(V2)(s, event, payload)
    finally:
        await engine.dispose()
    return p, c1, c2


async def differences(client: Any, headers: dict[str, str], unit: str | None = None) -> Any:
    params = {"period": "202609", "profile": V2.key, **({"unit_id": unit} if unit else {})}
    r = await client.get("/api/v1/official-scores/differences", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_differences_show_which_input_differs(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]
) -> None:
    def facts(c1: str) -> list[DossierRecord]:
        return [
            dossier(c1, 1), dossier(c1, 2, channel=2),
            dossier(c1, 3, finished_at=vn(2026, 9, 12)),  # late
            dossier(c1, 4, status=4, finished_at=None, due_at=vn(2026, 10, 20)),
        ]  # fmt: skip

    p, c1, _ = await scored_and_published(make_settings(), facts, lambda c1, _: _published(c1))
    app = create_scoring(make_settings(service_name="scoring", workers_enabled=False))
    async with running(app) as client:
        rows = {x["item"]: x for x in await differences(client, auth("viewer"), c1)}
        on_time = rows["prog_on_time"]
        assert on_time["external_code"] == "ON_TIME" and on_time["kind"] == "indicator"
        assert (on_time["official_numerator"], on_time["official_denominator"]) == (3, 5)
        assert (on_time["our_numerator"], on_time["our_denominator"]) == (3, 4)
        assert on_time["differs"] == "denominator" and "Mẫu số" in on_time["note"]
        assert rows["onl_dossiers"]["differs"] == "numerator"
        assert rows["onl_dossiers"]["official"] is None  # published without points
        sync = rows["pub_synced"]
        assert (sync["official_numerator"], sync["our_numerator"]) == (0, 0)
        assert sync["differs"] == "method" and sync["ours"] == 0 and sync["official"] == 1.5
        assert rows["progress"]["kind"] == "group" and rows["total"]["kind"] == "total"
        assert rows["progress"]["official"] == 12
        officer = await differences(client, auth("officer", p))
        assert all(x["unit_id"] == p for x in officer)


async def test_differences_say_when_the_portals_total_is_not_its_groups_sum(
    make_settings: Callable[..., Settings], auth: Callable[..., dict[str, str]]
) -> None:
    """The portal's files flag units whose published total is not the sum of their own group
    scores. Where a unit's every group is published, the total's row says whether the portal's
    total is its groups' sum: here c1's is 3 points above it (a gap that is the portal's), c2's
    is not, and c2 has no score of ours to compare."""
    codes = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDHL", "MDSH")

    def unit(unit_id: str, total: float) -> OfficialUnitScores:
        return OfficialUnitScores(
            unit_id=unit_id, external_code=f"H33.{unit_id[-1]}", total=total, total_max=100,
            groups=[OfficialGroup(code=c, score=5.0, max=20) for c in codes], metrics=[],
        )  # fmt: skip

    def published(c1: str, c2: str) -> OfficialScoresPublished:
        return OfficialScoresPublished(
            source_id="portal", source="Cổng DVCQG 2026-10-08", period="202609",
            fetched_at=PUBLISHED_ON, units=[unit(c1, 33.0), unit(c2, 30.0)],
        )  # fmt: skip

    _, c1, c2 = await scored_and_published(make_settings(), lambda c1: [dossier(c1, 1)], published)
    app = create_scoring(make_settings(service_name="scoring", workers_enabled=False))
    async with running(app) as client:
        totals = {}
        for u in (c1, c2):
            rows = await differences(client, auth("viewer"), u)
            totals[u] = next(x for x in rows if x["item"] == "total")
    assert totals[c1]["official_groups_sum"] == 30.0
    assert totals[c1]["differs"] == "portal_total" and "chính Cổng" in totals[c1]["note"]
    assert totals[c2]["official_groups_sum"] == 30.0 and totals[c2]["ours"] is None
    assert totals[c2]["differs"] is None


def test_a_publication_is_announced_in_parts_that_fit_a_message() -> None:
    """A province's publication (~12 KB a unit) in one event exceeded the broker's 1 MB message
    limit for 150 units, and that event stalled the outbox. `in_parts` keeps the units in order
    in parts within the budget; a unit larger than the budget goes alone."""

    def unit(n: int, metrics: int) -> OfficialUnitScores:
        return OfficialUnitScores(
            unit_id=f"U{n}", external_code=f"H33.{n}", total=50.0, total_max=100, groups=[],
            metrics=[OfficialMetric(code=f"M{i}", numerator=i, denominator=100, ratio=i,
                                    score=1.0, max=2.0) for i in range(metrics)],
        )  # fmt: skip

    def size(u: OfficialUnitScores) -> int:
        return len(u.model_dump_json().encode())

    units = [unit(n, 27) for n in range(150)] + [unit(150, 2000)]
    budget = 20_000
    parts = in_parts(units, size, budget)
    assert [u.unit_id for p in parts for u in p] == [u.unit_id for u in units]
    assert len(parts) > 1 and parts[-1] == [units[-1]]  # the oversized unit alone
    assert all(sum(size(u) for u in p) <= budget for p in parts[:-1])
    assert in_parts([], size, budget) == []
