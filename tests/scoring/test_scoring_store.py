"""The scoring store on the real PostgreSQL: replay, aggregation, merger, alerts once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.alerts import AlertRule
from services.scoring.domain.engine import score
from services.scoring.domain.facts import aggregate, leaf_counters
from services.scoring.domain.periods import (
    VN_TZ,
    Period,
    periods_containing_month,
    periods_for_year,
)
from services.scoring.domain.profile import load_profile
from services.scoring.rebuild import rebuild_province_year
from services.scoring.recompute import Scoring, enqueue_running, recompute, refresh_stale
from services.scoring.store.breakdown import (
    ShortfallQuery,
    shortfall_breakdown,
    shortfall_breakdowns,
)
from services.scoring.store.counters import period_counters
from services.scoring.store.facts_store import upsert_facts
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import LineageIn, UnitIn, import_units, seed_units
from services.scoring.store.snapshots import get_snapshot, list_rankings
from shared.db import make_engine, make_sessionmaker
from shared.events.outbox import Outbox
from shared.events.payloads import DossierRecord, ProcedureRecord
from shared.settings import Settings

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
TODAY = date(2026, 10, 20)
"""A day on which September 2026 is still watched by the alert rules (the month just closed)."""


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back: nothing leaks between tests."""
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=2)
    async with make_sessionmaker(engine)() as session:
        await session.begin()
        try:
            yield session
        finally:
            await session.rollback()
    await engine.dispose()


@pytest.fixture
def ctx() -> Scoring:
    # a handful of dossiers per test: the minimum volume is the alert tests' own subject
    rules = (
        AlertRule(
            id="below_target", kind="below_target", indicators=("prog_on_time",), min_volume=1
        ),
    )
    # these tests pin the decision's profile (766@1); 766@2 has its own tests
    return Scoring(
        outbox=Outbox(outbox_table, "/cchc-monitor/scoring"),
        profile=load_profile("766", 1),
        alert_rules=rules,
    )


def vn(y: int, m: int, d: int, h: int = 9) -> datetime:
    return datetime(y, m, d, h, tzinfo=VN_TZ)


def unit(uid: str, parent: str | None, level: str, kind: str, **kw: Any) -> UnitIn:
    return UnitIn(id=uid, name=uid, level=level, kind=kind, parent_id=parent,
                  valid_from=kw.pop("valid_from", date(2000, 1, 1)), **kw)  # fmt: skip


async def tree(db: AsyncSession) -> tuple[str, str, str]:
    p = "T" + uuid.uuid4().hex[:8]
    c1, c2 = f"{p}.C1", f"{p}.C2"
    await import_units(db, [unit(p, None, "province", "tỉnh"), unit(c1, p, "commune", "xã"),
                            unit(c2, p, "commune", "xã")])  # fmt: skip
    return p, c1, c2


def dossier(unit_id: str, n: int, **kw: Any) -> DossierRecord:
    base: dict[str, Any] = {
        "source_id": "test", "code": f"{unit_id}-{n}", "unit_id": unit_id,
        "procedure_code": "1.001", "channel": 1, "status": 10,
        "received_at": vn(2026, 9, 1), "due_at": vn(2026, 9, 10),
        "finished_at": vn(2026, 9, 9), "source_updated_at": vn(2026, 9, 11),
    }  # fmt: skip
    base.update(kw)
    return DossierRecord(**base)


def facts_for(c1: str, c2: str) -> list[DossierRecord]:
    return [
        dossier(c1, 1),
        dossier(c1, 2, channel=2),
        dossier(c1, 3, finished_at=vn(2026, 9, 12)),  # late
        dossier(c1, 4, status=4, finished_at=None, due_at=vn(2026, 9, 20)),  # open overdue
        dossier(
            c2, 1, received_at=vn(2026, 7, 1), due_at=vn(2026, 7, 9), finished_at=vn(2026, 7, 2)
        ),
        dossier(c2, 2, status=4, finished_at=None, due_at=vn(2026, 10, 20)),  # open within
    ]


async def test_seed_registry_paths_and_lineage(db: AsyncSession) -> None:
    await seed_units(db)
    row = (await db.execute(text(
        "SELECT path FROM scoring.units WHERE id = 'P21.C001'"))).scalar_one()  # fmt: skip
    assert row == "/P21/P21.C001/"
    n = (await db.execute(text(
        "SELECT count(*) FROM scoring.unit_lineage WHERE to_id = 'P21' AND kind = 'merged_into'"
    ))).scalar_one()  # fmt: skip
    assert n == 2
    code = (await db.execute(text(
        "SELECT unit_id FROM scoring.unit_external_codes WHERE code = '000.02.00.H33'"
    ))).scalar_one()  # fmt: skip
    assert code == "P21.SNV"


async def test_parent_counters_are_sums_and_match_the_reference(db: AsyncSession) -> None:
    p, c1, c2 = await tree(db)
    facts = facts_for(c1, c2)
    assert await upsert_facts(db, facts, now=AS_OF) == len(facts)
    q3 = Period.parse("2026Q3")
    sql = await period_counters(db, [p, c1, c2], q3, AS_OF)
    ref_leaves = leaf_counters(dossiers=facts, stock_months=[q3.end_month], as_of=AS_OF)
    for u, members in ((p, {p, c1, c2}), (c1, {c1}), (c2, {c2})):
        ref = {k: v for k, v in aggregate(ref_leaves, q3, members).items() if v}
        assert sql[u] == ref, u
    for k in ("received", "finished", "on_time_or_within", "processed_or_open", "late_total"):
        assert sql[p].get(k, 0) == sql[c1].get(k, 0) + sql[c2].get(k, 0)
    assert sql[c1]["on_time_or_within"] == 2 and sql[c1]["processed_or_open"] == 4
    assert sql[c2]["on_time_or_within"] == 2 and sql[c2]["processed_or_open"] == 2


async def test_replaying_events_leaves_snapshots_unchanged(db: AsyncSession, ctx: Scoring) -> None:
    p, c1, c2 = await tree(db)
    facts = facts_for(c1, c2)
    await upsert_facts(db, facts, now=AS_OF)
    periods = [Period.parse("202609"), Period.parse("2026Q3")]
    first = await recompute(db, ctx, [p, c1, c2], periods, AS_OF)
    assert first.versions == 6
    before = await get_snapshot(db, p, "2026Q3", "766@1")
    assert before is not None and before["version"] == 1
    leaves = (await db.execute(text(
        "SELECT counter, procedure, month, value FROM scoring.leaf_counters "
        "WHERE unit_id = :u ORDER BY 1, 2, 3"), {"u": c1})).all()  # fmt: skip
    # the same batch again, and an older version of a dossier: nothing changes
    assert await upsert_facts(db, facts, now=AS_OF) == 0
    stale_old = facts[0].model_copy(update={"status": 4, "source_updated_at": vn(2026, 9, 1)})
    assert await upsert_facts(db, [stale_old], now=AS_OF) == 0
    again = await recompute(db, ctx, [p, c1, c2], periods, AS_OF)
    assert again.versions == 0 and again.raised == 0
    after = await get_snapshot(db, p, "2026Q3", "766@1")
    assert after == before
    assert (await db.execute(text(
        "SELECT counter, procedure, month, value FROM scoring.leaf_counters "
        "WHERE unit_id = :u ORDER BY 1, 2, 3"), {"u": c1})).all() == leaves  # fmt: skip
    # a newer version moves counters (delta) and writes version 2; as-of still sees version 1
    newer = facts[2].model_copy(
        update={"finished_at": vn(2026, 9, 9), "source_updated_at": vn(2026, 9, 20)}
    )
    assert await upsert_facts(db, [newer], now=AS_OF) == 1
    third = await recompute(db, ctx, [p, c1, c2], periods, AS_OF)
    assert third.versions == 4  # c1 and p, for both periods
    latest = await get_snapshot(db, p, "2026Q3", "766@1")
    assert latest is not None and latest["version"] == 2
    assert latest["total"] > before["total"]
    v1 = await get_snapshot(db, p, "2026Q3", "766@1", version=1)
    assert v1 == before


async def test_merged_unit_pre_merger_periods_sum_predecessors(
    db: AsyncSession, ctx: Scoring
) -> None:
    tag = uuid.uuid4().hex[:8]
    new, a, b = f"N{tag}", f"A{tag}", f"B{tag}"
    a_d = f"{a}.D1"
    await import_units(
        db,
        [
            unit(new, None, "province", "tỉnh", valid_from=date(2025, 7, 1)),
            unit(a, None, "province", "tỉnh", valid_to=date(2025, 6, 30)),
            unit(b, None, "province", "tỉnh", valid_to=date(2025, 6, 30)),
            unit(a_d, a, "district", "huyện", valid_to=date(2025, 6, 30)),
        ],
        [
            LineageIn(from_id=a, to_id=new, kind="merged_into", effective_on=date(2025, 7, 1)),
            LineageIn(from_id=b, to_id=new, kind="merged_into", effective_on=date(2025, 7, 1)),
        ],
    )
    march = {"received_at": vn(2025, 3, 2), "due_at": vn(2025, 3, 10),
             "finished_at": vn(2025, 3, 5), "source_updated_at": vn(2025, 3, 6)}  # fmt: skip
    facts = [
        dossier(a_d, 1, **march),
        dossier(a_d, 2, **{**march, "finished_at": vn(2025, 3, 20)}),  # late
        dossier(b, 1, **march),
        dossier(new, 1),  # after the merger, under the new unit
    ]
    await upsert_facts(db, facts, now=AS_OF)
    q1 = Period.parse("2025Q1")
    c = await period_counters(db, [new, a, b, a_d], q1, AS_OF)
    for k in ("received", "finished", "finished_on_time", "finished_late"):
        assert c[new].get(k, 0) == c[a].get(k, 0) + c[b].get(k, 0), k
    assert c[new]["received"] == 3 and c[a]["received"] == 2
    stats = await rebuild_province_year(db, ctx, new, 2025, as_of=AS_OF)
    assert stats.versions > 0
    snap = await get_snapshot(db, new, "2025Q1", "766@1")
    assert snap is not None
    assert snap["indicators"]["prog_on_time"]["ratio"] == pytest.approx(2 / 3, abs=1e-4)
    y2026 = await period_counters(db, [new], Period.parse("2026"), AS_OF)
    assert y2026[new]["received"] == 1


async def test_alert_raised_once_then_cleared(db: AsyncSession, ctx: Scoring) -> None:
    p, c1, _ = await tree(db)
    bad = [dossier(c1, i, finished_at=vn(2026, 9, 15)) for i in range(3)] + [dossier(c1, 9)]
    await upsert_facts(db, bad, now=AS_OF)
    sep = [Period.parse("202609")]

    async def raised_events() -> list[dict[str, Any]]:
        rows = await db.execute(text(
            "SELECT type, payload::jsonb FROM scoring.outbox WHERE key = :u AND type LIKE '%alert%' "
            "ORDER BY id"), {"u": c1})  # fmt: skip
        return [{"type": t, **pl} for t, pl in rows.all()]

    s1 = await recompute(db, ctx, [p, c1], sep, AS_OF, today=TODAY)
    assert s1.raised == 2  # the commune and its province (same facts)
    ev = await raised_events()
    assert [e["type"] for e in ev] == ["vn.cchc.scoring.alert.raised.v1"]
    assert ev[0]["indicator"] == "prog_on_time" and ev[0]["value"] == pytest.approx(0.25)
    # another late dossier: a new snapshot version, still breached, no second alert
    await upsert_facts(db, [dossier(c1, 20, finished_at=vn(2026, 9, 16))], now=AS_OF)
    s2 = await recompute(db, ctx, [p, c1], sep, AS_OF, today=TODAY)
    assert s2.versions >= 1 and s2.raised == 0
    assert len(await raised_events()) == 1
    # recovery: the late ones are corrected by the source → cleared once
    fixed = [
        d.model_copy(update={"finished_at": vn(2026, 9, 9), "source_updated_at": vn(2026, 9, 25)})
        for d in [*bad[:3], dossier(c1, 20)]
    ]
    await upsert_facts(db, fixed, now=AS_OF)
    s3 = await recompute(db, ctx, [p, c1], sep, AS_OF, today=TODAY)
    assert s3.cleared == 2
    assert [e["type"] for e in await raised_events()] == [
        "vn.cchc.scoring.alert.raised.v1",
        "vn.cchc.scoring.alert.cleared.v1",
    ]
    snap_events = (await db.execute(text(
        "SELECT count(*) FROM scoring.outbox WHERE key = :u AND type LIKE '%snapshot.updated%'"
    ), {"u": c1})).scalar_one()  # fmt: skip
    assert snap_events == 3  # one per new version


async def test_alerts_only_for_watched_periods(db: AsyncSession, ctx: Scoring) -> None:
    """A whole backfilled year breaches every month; alerts are raised only for the periods
    that are current on `today` (October 2026: the running month, quarter and year, and the
    month and quarter just closed), one per period kind; `today` defaults to the as-of
    instant's Vietnam date."""
    _, c1, _ = await tree(db)
    late = [
        dossier(c1, m, received_at=vn(2026, m, 1), due_at=vn(2026, m, 10),
                finished_at=vn(2026, m, 20), source_updated_at=vn(2026, m, 21))
        for m in range(1, 11)
    ]  # fmt: skip
    await upsert_facts(db, late, now=AS_OF)
    periods = [*periods_for_year(2026, 10), Period.parse("2026Q4"), Period.parse("2026")]
    s = await recompute(db, ctx, [c1], periods, vn(2026, 10, 25))
    rows = await db.execute(text(
        "SELECT period FROM scoring.alerts WHERE unit_id = :u AND status = 'open'"), {"u": c1})  # fmt: skip
    # one alert per (unit, indicator, period kind): September's month alert is continued by
    # October (still breaching), Q3's by Q4
    assert sorted(rows.scalars()) == sorted(["2026", "2026Q4", "202610"])
    assert s.raised == 3
    # a month later September and Q3 are no longer watched, but their alerts stay open
    s = await recompute(db, ctx, [c1], periods, AS_OF, today=date(2026, 11, 20))
    assert (s.raised, s.cleared) == (0, 0)


async def test_stale_queue_refreshes_ancestors(db: AsyncSession, ctx: Scoring) -> None:
    p, c1, c2 = await tree(db)
    await upsert_facts(db, [dossier(c2, 1)], now=AS_OF)
    stale = (await db.execute(text(
        "SELECT month FROM scoring.stale WHERE unit_id = :u"), {"u": c2})).scalars().all()  # fmt: skip
    assert stale == ["202609"]
    await refresh_stale(db, ctx, as_of=AS_OF)
    for pid in ("202609", "2026Q3", "2026YTD09", "2026YTD11"):
        s = await get_snapshot(db, p, pid, "766@1")
        assert s is not None and s["counters"]["received"] == 1, pid
    assert await get_snapshot(db, p, "2026YTD12", "766@1") is None  # not started yet
    assert await get_snapshot(db, c1, "202609", "766@1") is None  # sibling untouched


async def test_refresh_reads_unchanged_members_stored_counters(
    db: AsyncSession, ctx: Scoring
) -> None:
    """After an event only the changed unit's own counters are recomputed from its facts; the
    parent's figures are the sum of its members' own counters, the others read as stored."""
    p, c1, c2 = await tree(db)
    await upsert_facts(db, facts_for(c1, c2), now=AS_OF)
    sep = Period.parse("202609")
    # every member's own counters from the facts, stored, for every period September is in
    await recompute(db, ctx, [p, c1, c2], periods_containing_month("202609"), AS_OF)
    await db.execute(text("DELETE FROM scoring.stale WHERE unit_id = ANY(CAST(:u AS text[]))"),
                     {"u": [p, c1, c2]})  # fmt: skip
    stored = (await db.execute(text(
        "SELECT count(*) FROM scoring.own_counters WHERE unit_id = ANY(CAST(:u AS text[])) "
        "AND period = '202609'"), {"u": [p, c1, c2]})).scalar_one()  # fmt: skip
    assert stored == 3
    # mark c2's stored figures: a refresh for c1 must read them, not recompute them
    await db.execute(text(
        "UPDATE scoring.own_counters SET counters = counters || '{\"received\": 100}' "
        "WHERE unit_id = :u AND period = '202609'"), {"u": c2})  # fmt: skip
    await upsert_facts(db, [dossier(c1, 30)], now=AS_OF)
    await refresh_stale(db, ctx, as_of=AS_OF)
    prov = await get_snapshot(db, p, "202609", "766@1")
    own = await get_snapshot(db, c1, "202609", "766@1")
    assert prov is not None and own is not None
    assert own["counters"]["received"] == 5
    assert prov["counters"]["received"] == 5 + 100
    exact = await period_counters(db, [p], sep, AS_OF)  # every member from its facts again
    assert exact[p]["received"] == 5 + 1


async def test_time_alone_requeues_running_months(db: AsyncSession) -> None:
    _, c1, _ = await tree(db)
    await upsert_facts(db, [dossier(c1, 1, status=4, finished_at=None), dossier(c1, 2)], now=AS_OF)
    await db.execute(text("DELETE FROM scoring.stale WHERE unit_id = :u"), {"u": c1})
    await enqueue_running(db, AS_OF)
    months = (await db.execute(text(
        "SELECT month FROM scoring.stale WHERE unit_id = :u ORDER BY month"), {"u": c1}
    )).scalars().all()  # fmt: skip
    assert months == ["202610", "202611"]


async def test_changed_dossiers_are_scored_before_the_catch_up(
    db: AsyncSession, ctx: Scoring
) -> None:
    """The periodic catch-up queues the running months of every unit with open dossiers (a
    province: thousands of pairs); a dossier that changed meanwhile is scored first."""
    _, c1, c2 = await tree(db)
    await upsert_facts(db, [dossier(c1, 1, status=4, finished_at=None), dossier(c2, 1)], now=AS_OF)
    # only this test's queue (rolled back with the test): other tests' leftovers must not decide
    await db.execute(text("DELETE FROM scoring.stale"))
    await enqueue_running(db, AS_OF)
    # the catch-up was queued an hour before the event: oldest first would take it first
    await db.execute(text("UPDATE scoring.stale SET enqueued_at = now() - interval '1 hour'"))
    await upsert_facts(db, [dossier(c2, 2)], now=AS_OF)  # an event: c2's September changed
    await refresh_stale(db, ctx, as_of=AS_OF, limit=1)
    # (the catch-up queued every unit with open dossiers in the shared database: ours are read)
    mine = {"u": [c1, c2]}
    left = (await db.execute(text(
        "SELECT unit_id, month, priority FROM scoring.stale WHERE unit_id = ANY(CAST(:u AS text[])) "
        "ORDER BY unit_id, month"), mine)).all()  # fmt: skip
    assert [tuple(r) for r in left] == [(c1, "202610", 1), (c1, "202611", 1)]
    # an event on a pair the catch-up queued moves it ahead too
    await upsert_facts(db, [dossier(c1, 2, received_at=vn(2026, 11, 2), due_at=vn(2026, 11, 9),
                                    finished_at=vn(2026, 11, 3))], now=AS_OF)  # fmt: skip
    await refresh_stale(db, ctx, as_of=AS_OF, limit=1)
    left = (await db.execute(text(
        "SELECT unit_id, month FROM scoring.stale WHERE unit_id = ANY(CAST(:u AS text[]))"), mine
    )).all()  # fmt: skip
    assert [tuple(r) for r in left] == [(c1, "202610")]


async def test_ranks_with_change_since_previous_period(db: AsyncSession, ctx: Scoring) -> None:
    p, c1, c2 = await tree(db)
    aug = {"received_at": vn(2026, 8, 3), "due_at": vn(2026, 8, 10),
           "source_updated_at": vn(2026, 8, 20)}  # fmt: skip
    await upsert_facts(db, [
        dossier(c1, 1, **aug, finished_at=vn(2026, 8, 5)),   # Aug: c1 on time, c2 late
        dossier(c2, 1, **aug, finished_at=vn(2026, 8, 15)),
        dossier(c1, 2, finished_at=vn(2026, 9, 15)),           # Sep: c1 late, c2 on time
        dossier(c2, 2),
    ], now=AS_OF)  # fmt: skip
    await recompute(db, ctx, [p, c1, c2], [Period.parse("202608"), Period.parse("202609")], AS_OF)
    rows = await list_rankings(db, "202609", "766@1", "commune", p)
    assert [(r["unit_id"], r["rank"], r["previous_rank"]) for r in rows] == [
        (c2, 1, 2),
        (c1, 2, 1),
    ]
    # as-of: the version current at a past instant
    first = await get_snapshot(db, c1, "202609", "766@1")
    assert first is not None
    past = await get_snapshot(db, c1, "202609", "766@1", as_of=first["computed_at"])
    assert past == first
    before = await get_snapshot(db, c1, "202609", "766@1", as_of=datetime(2020, 1, 1, tzinfo=UTC))
    assert before is None


async def test_concurrent_writers_of_one_fact_keep_counters_exact(settings: Settings) -> None:
    """Two transactions write newer versions of the same dossier, which moves between units
    (so two consumers on different partitions may write it): counters equal a replay in order."""
    engine = make_engine(settings.async_database_url, schema="scoring", pool_size=4)
    sessions = make_sessionmaker(engine)
    tag = uuid.uuid4().hex[:8]
    a, b = f"X{tag}.A", f"X{tag}.B"
    v1 = dossier(a, 1, status=4, finished_at=None, source_updated_at=vn(2026, 9, 2))
    v2 = v1.model_copy(update={"status": 10, "finished_at": vn(2026, 9, 5),
                               "source_updated_at": vn(2026, 9, 5)})  # fmt: skip
    v3 = v2.model_copy(update={"unit_id": b, "source_updated_at": vn(2026, 9, 6)})
    try:
        async with sessions() as s, s.begin():
            await upsert_facts(s, [v1], now=AS_OF)
        first = sessions()
        await first.begin()
        await upsert_facts(first, [v2], now=AS_OF)  # holds the fact's lock
        second = asyncio.create_task(_upsert_in_own_tx(sessions, v3))
        await asyncio.sleep(0.3)
        assert not second.done()  # waits for the first writer
        await first.commit()
        await first.close()
        assert await second == 1
        async with sessions() as s:
            rows = (await s.execute(text(
                "SELECT unit_id, counter, value FROM scoring.leaf_counters "
                "WHERE unit_id IN (:a, :b) AND value <> 0 ORDER BY 1, 2"), {"a": a, "b": b}
            )).all()  # fmt: skip
        assert [tuple(r) for r in rows] == [
            (b, "finished", 1), (b, "finished_hours", 96), (b, "finished_on_time", 1),
            (b, "needs_result", 1), (b, "received", 1), (b, "received_on_time", 1),
        ]  # fmt: skip
    finally:
        await engine.dispose()


async def _upsert_in_own_tx(sessions: Any, record: DossierRecord) -> int:
    async with sessions() as s, s.begin():
        return await upsert_facts(s, [record], now=AS_OF)


async def test_shortfall_breakdowns(db: AsyncSession) -> None:
    p, c1, _ = await tree(db)

    def proc(code: str, level: str) -> ProcedureRecord:
        return ProcedureRecord(source_id="test", code=code, name=code, unit_id=c1,
                               online_level=level, source_updated_at=vn(2026, 1, 1))  # fmt: skip

    await upsert_facts(db, [proc("1.001", "full"), proc("2.002", "full"), proc("3.003", "none")],
                       now=AS_OF)  # fmt: skip
    await upsert_facts(db, [
        dossier(c1, 1, channel=2, synced_national=True),
        dossier(c1, 2, procedure_code="3.003"),
        dossier(c1, 3, procedure_code="3.003", finished_at=vn(2026, 9, 20)),
    ], now=AS_OF)  # fmt: skip
    sep = Period.parse("202609")

    async def rows(num: str, den: str, sc: str | None = None) -> list[tuple[str, str, float]]:
        return await shortfall_breakdown(db, p, sep, AS_OF, num, den, sc)

    assert await rows("proc_online", "proc_total") == [("3.003", c1, 1.0)]
    assert await rows("proc_online_with_dossiers", "proc_online") == [("2.002", c1, 1.0)]
    assert await rows("synced", "received") == [("3.003", c1, 2.0)]
    assert await rows("on_time_or_within", "processed_or_open") == [("3.003", c1, 1.0)]
    counters = (await period_counters(db, [p], sep, AS_OF))[p]
    assert counters["proc_online_with_dossiers"] == 1 and counters["proc_online"] == 2


async def test_shortfall_breakdowns_read_together_equal_each_alone(db: AsyncSession) -> None:
    """A rebuild asks for the breakdowns of every alert it raises in one call: mixed kinds,
    several indicators of the same unit and period, one indicator over several periods and
    units, two periods over the same months (the year and its December year-to-date). Each
    answer is the one the query gets alone, in the caller's order."""
    p, c1, c2 = await tree(db)

    def proc(code: str, unit: str, level: str) -> ProcedureRecord:
        return ProcedureRecord(source_id="test", code=code, name=code, unit_id=unit,
                               online_level=level, source_updated_at=vn(2026, 1, 1))  # fmt: skip

    await upsert_facts(db, [proc("1.001", c1, "full"), proc("3.003", c1, "none"),
                            proc("4.004", c2, "full")], now=AS_OF)  # fmt: skip
    await upsert_facts(db, [
        dossier(c1, 1, channel=2, synced_national=True),
        dossier(c1, 2, procedure_code="3.003"),
        dossier(c1, 3, procedure_code="3.003", finished_at=vn(2026, 9, 20)),
        dossier(c2, 4, procedure_code="4.004", received_at=vn(2026, 8, 3),
                due_at=vn(2026, 8, 10), finished_at=vn(2026, 8, 25)),
        dossier(c2, 5, procedure_code="4.004", received_at=vn(2026, 9, 2),
                due_at=vn(2026, 9, 5), finished_at=None, status=4),
    ], now=AS_OF)  # fmt: skip
    kinds = [("synced", "received", None), ("on_time_or_within", "processed_or_open", None),
             ("proc_online", "proc_total", None), ("received_online", "received", None),
             ("proc_online_with_dossiers", "proc_online", None)]  # fmt: skip
    queries = [
        ShortfallQuery(unit, Period.parse(period), AS_OF, num, den, sc)
        for unit in (p, c1, c2)
        for period in ("202608", "202609", "2026Q3", "2026", "2026YTD12")
        for num, den, sc in kinds
    ]
    together = await shortfall_breakdowns(db, queries)
    alone = [
        await shortfall_breakdown(db, q.unit, q.period, q.as_of, q.numerator, q.denominator,
                                  q.shortfall_counter)
        for q in queries
    ]  # fmt: skip
    assert together == alone
    # and the answers are not all empty: the late dossiers of c2 show in August, September
    # (open and overdue) and the quarter, for c2 and the province
    late = {(q.unit, q.period.id): rows for q, rows in zip(queries, together, strict=True)
            if q.numerator == "on_time_or_within"}  # fmt: skip
    assert late[(c2, "202608")] == [("4.004", c2, 1.0)]
    assert late[(c2, "202609")] == [("4.004", c2, 1.0)]
    assert ("4.004", c2, 2.0) in late[(p, "2026Q3")]


async def test_on_time_counts_the_dossiers_received_in_the_period(db: AsyncSession) -> None:
    """766@2's on-time share (the portal's ON_TIME) is of September's received dossiers, as
    last known: one finished on time, one still open within time and one finished late in
    October count (2 of 3); a dossier received in August and finished in September does not."""
    _, c1, _ = await tree(db)
    await upsert_facts(db, [
        dossier(c1, 1),  # received 1/9, finished 9/9, due 10/9
        dossier(c1, 2, status=4, finished_at=None, due_at=vn(2026, 10, 20),
                source_updated_at=vn(2026, 9, 20)),  # open, within time when last updated
        dossier(c1, 3, finished_at=vn(2026, 10, 2), source_updated_at=vn(2026, 10, 3)),  # late
        dossier(c1, 4, received_at=vn(2026, 8, 20), due_at=vn(2026, 8, 30),
                finished_at=vn(2026, 9, 2)),  # received in August
    ], now=AS_OF)  # fmt: skip
    sep = Period.parse("202609")
    c = (await period_counters(db, [c1], sep, AS_OF))[c1]
    assert (c["received"], c["received_on_time"], c["on_time_base"]) == (3, 2, 3)
    card = score(load_profile("766", 2), c)
    res = card.indicators["prog_on_time"]
    assert (res.numerator, res.denominator, res.ratio) == (2, 3, 0.6667)


async def test_no_score_for_a_period_a_unit_did_not_exist_in(
    db: AsyncSession, ctx: Scoring
) -> None:
    """An old ward abolished on 30/6/2025 gets no score for the months and quarters after its
    end (the year and year-to-dates still overlap it); a commune created on 1/7/2025 gets its
    first-half figures as its predecessor's sum, a commune created from nothing none. Dossiers
    recorded against the old ward after its end are not lost: its successor and the province
    count them, in the rebuild and in the event-driven refresh alike."""
    tag = uuid.uuid4().hex[:8]
    p, old, new, bare = f"V{tag}", f"V{tag}.OW", f"V{tag}.NC", f"V{tag}.BN"
    await import_units(
        db,
        [
            unit(p, None, "province", "tỉnh"),
            unit(old, p, "commune", "xã", valid_to=date(2025, 6, 30)),
            unit(new, p, "commune", "xã", valid_from=date(2025, 7, 1)),
            unit(bare, p, "commune", "xã", valid_from=date(2025, 7, 1)),
        ],
        [LineageIn(from_id=old, to_id=new, kind="merged_into", effective_on=date(2025, 7, 1),
                   carries="self")],
    )  # fmt: skip

    def at(u: str, n: int, month: int) -> DossierRecord:
        return dossier(u, n, received_at=vn(2025, month, 2), due_at=vn(2025, month, 10),
                       finished_at=vn(2025, month, 5), source_updated_at=vn(2025, month, 21))  # fmt: skip

    # the old ward's March dossiers, one still recorded against it in August, the new ones'
    await upsert_facts(db, [at(old, 1, 3), at(old, 2, 3), at(old, 3, 8), at(new, 1, 9),
                            at(bare, 1, 9)], now=AS_OF)  # fmt: skip
    # a score the old ward was given for August before the rule: the rebuild removes it
    await db.execute(
        text("INSERT INTO scoring.snapshots (unit_id, period, profile, version, max_total, "
             "applicable_max, groups, indicators, counters, digest, points) VALUES "
             "(:u, '202508', '766@1', 1, 100, 100, '{}', '{}', '{}', 'legacy', '{}')"),
        {"u": old},
    )  # fmt: skip
    stats = await rebuild_province_year(db, ctx, p, 2025, as_of=AS_OF)

    async def received(u: str, pid: str) -> float | None:
        s = await get_snapshot(db, u, pid, "766@1")
        return None if s is None else s["counters"].get("received", 0)

    for pid in ("202507", "202508", "202512", "2025Q3", "2025Q4"):
        assert await received(old, pid) is None, pid
    for pid in ("202501", "202506", "2025Q1", "2025Q2", "2025YTD03"):
        assert await received(bare, pid) is None, pid
    assert await received(old, "202503") == 2
    assert await received(old, "2025YTD08") == 3 and await received(old, "2025") == 3
    # the successor's figures: its predecessor's, the August one included, and its own
    assert await received(new, "2025Q1") == 2
    assert await received(new, "202508") == 1
    assert await received(new, "2025") == 4
    assert await received(bare, "202509") == 1 and await received(bare, "2025") == 1
    assert await received(p, "202508") == 1 and await received(p, "2025") == 5
    scored = (await db.execute(text(
        "SELECT unit_id, count(DISTINCT period) FROM scoring.snapshots "
        "WHERE unit_id = ANY(CAST(:u AS text[])) AND profile = '766@1' GROUP BY unit_id"),
        {"u": [p, old, new, bare]})).all()  # fmt: skip
    # every period of the year for the province and the new commune; the old ward: 6 months,
    # 2 quarters, 12 YTDs, the year; the bare commune: 6 months, 2 quarters, 6 YTDs
    # (July–December), the year
    assert dict(scored) == {p: 29, new: 29, old: 21, bare: 15}
    assert stats.pairs == 29 + 29 + 21 + 15
    ranked = {r["unit_id"] for r in await list_rankings(db, "202508", "766@1", "commune", p)}
    assert ranked == {new, bare}

    # the event-driven refresh: another dossier recorded against the old ward, in October
    await upsert_facts(db, [at(old, 4, 10)], now=AS_OF)
    await refresh_stale(db, ctx, as_of=AS_OF)
    assert await received(old, "202510") is None and await received(old, "2025Q4") is None
    assert await received(old, "2025") == 4
    assert await received(new, "202510") == 1 and await received(new, "2025") == 5
    assert await received(p, "2025Q4") == 1 and await received(p, "2025") == 6


async def test_rerun_scores_only_what_changed(db: AsyncSession, ctx: Scoring) -> None:
    """A re-run scores again only the unit-periods whose counters changed since their latest
    snapshot: an unchanged one keeps its version as it stands (here a tampered total shows it
    was not rewritten), a changed one gets a new version; `rescore` scores every one. Judged on
    a day outside every alert window, with no alert open: no card is needed for alerts."""
    later = date(2027, 6, 1)
    p, c1, c2 = await tree(db)
    await upsert_facts(db, facts_for(c1, c2), now=AS_OF)
    first = await rebuild_province_year(db, ctx, p, 2026, as_of=AS_OF, today=later)
    assert first.versions == first.pairs > 0

    async def latest(u: str, pid: str) -> dict[str, Any]:
        s = await get_snapshot(db, u, pid, "766@1")
        assert s is not None
        return s

    before = await latest(c2, "202609")
    await db.execute(
        # as an older engine's code would have scored the same counters
        text("UPDATE scoring.snapshots SET total = -1, digest = 'older' "
             "WHERE unit_id = :u AND period = '202609'"),
        {"u": c2},
    )  # fmt: skip
    # a new dossier of c1 in September: c1, the province and their September periods change
    await upsert_facts(db, [dossier(c1, 40)], now=AS_OF)
    again = await rebuild_province_year(db, ctx, p, 2026, as_of=AS_OF, today=later)
    assert again.pairs == first.pairs
    changed = {(u, pid) for pid in ("202609", "2026Q3", "2026YTD09", "2026YTD11") for u in (p, c1)}
    rows = (await db.execute(text(
        "SELECT unit_id, period FROM scoring.snapshots WHERE version = 2 "
        "AND unit_id = ANY(CAST(:u AS text[]))"), {"u": [p, c1, c2]})).all()  # fmt: skip
    assert changed <= set(map(tuple, rows)) and all(u != c2 for u, _ in rows)
    assert (await latest(c2, "202609"))["total"] == -1  # unchanged counters: not rewritten
    assert (await latest(c1, "202609"))["counters"]["received"] == 5
    await rebuild_province_year(db, ctx, p, 2026, as_of=AS_OF, today=later, rescore=True)
    fixed = await latest(c2, "202609")
    assert fixed["version"] == 2 and fixed["total"] == before["total"]
