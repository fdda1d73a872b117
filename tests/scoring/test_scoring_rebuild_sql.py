"""The rebuild's set-based SQL (leaf counters from facts, all periods at once) against the pure
contribution rules and the per-period counters they replace."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.facts import aggregate, leaf_counters
from services.scoring.domain.periods import Period, periods_for_year
from services.scoring.rebuild import rebuild_province_year
from services.scoring.recompute import Scoring
from services.scoring.store import counters
from services.scoring.store.counters import period_counters_many
from services.scoring.store.facts_store import upsert_facts
from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord
from tests.scoring import test_scoring_store as store
from tests.scoring.test_scoring_store import AS_OF, dossier, tree, vn

db = store.db
ctx = store.ctx


def mix(
    c1: str, c2: str
) -> tuple[list[DossierRecord], list[ProcedureRecord], list[PetitionRecord]]:
    rnd = random.Random(7)
    ds: list[DossierRecord] = []
    for n in range(300):
        u = c1 if n % 3 else c2
        rec = vn(2025, 1, 1) + timedelta(hours=rnd.randrange(0, 24 * 400))
        due = rec + timedelta(days=rnd.randrange(0, 20))
        status = rnd.choice([1, 2, 3, 4, 5, 7, 8, 9, 10, 10, 10])
        end = rec + timedelta(days=rnd.randrange(0, 30), hours=rnd.randrange(0, 24))
        ds.append(dossier(
            u, n, procedure_code=f"P{rnd.randrange(5)}", channel=rnd.choice([1, 2, 3]),
            status=status, received_at=None if n % 17 == 0 else rec, submitted_at=rec,
            due_at=None if n % 11 == 0 else due,
            finished_at=end if status in (7, 8, 9, 10) and n % 13 else None,
            rejected_at=end if status == 3 else None,
            supplement_count=rnd.choice([0, 0, 0, 1, 2]), supplement_days=rnd.choice([0, 2.5]),
            apology_count=rnd.choice([0] * 9 + [1]), has_fee=rnd.random() < 0.4,
            paid_online=rnd.choice([0, 1, 2]), digitised=rnd.random() < 0.6,
            reused_data=rnd.random() < 0.3, has_e_result=rnd.random() < 0.5,
            synced_national=rnd.random() < 0.8, vneid_verified=rnd.random() < 0.4,
            pds_synced=rnd.random() < 0.2, citizen_data_used=rnd.random() < 0.3,
            source_updated_at=end + timedelta(days=rnd.choice([-3, 1])),
        ))  # fmt: skip
    ps = [
        ProcedureRecord(
            source_id="test", code=f"P{i}", name=f"P{i}", unit_id=u,
            online_level=["none", "partial", "full"][i % 3], has_fee=i % 2 == 0,
            published_on=None if i == 4 else date(2025, 1 + i * 2, 10),
            publish_due_on=date(2025, 1 + i * 2, 5 + 5 * (i % 2)),
            public_on=None if i == 3 else date(2025, 2 + i, 1),
            public_due_on=date(2025, 2 + i, 3 - 2 * (i % 2)), content_complete=i != 1,
            full_online_eligible=i != 0, citizen_data_connected=i % 2 == 1,
            certification=i >= 3, e_certified_copy=i == 4,
            source_updated_at=vn(2025, 1, 1),
        )
        for u in (c1, c2) for i in range(5)
    ]  # fmt: skip
    pts = [
        PetitionRecord(
            source_id="test", code=f"{u}-K{i}", unit_id=u, received_at=vn(2025, 1 + i % 12, 2),
            due_at=None if i % 5 == 0 else vn(2025, 1 + i % 12, 12),
            handled_at=None if i % 7 == 0 else vn(2025, 1 + i % 12, 2 + i % 20),
            satisfied=[None, True, False][i % 3], source_updated_at=vn(2025, 12, 31),
            category=[None, "tthc", "staff", "other"][i % 4],
        )
        for u in (c1, c2) for i in range(40)
    ]  # fmt: skip
    return ds, ps, pts


async def leaves(db: AsyncSession, units: list[str]) -> dict[tuple[str, str, str, str], int]:
    rows = await db.execute(
        text("""SELECT unit_id, procedure, month, counter, value FROM scoring.leaf_counters
                WHERE unit_id = ANY(CAST(:u AS text[])) AND month LIKE '2025%' AND value <> 0"""),
        {"u": units},
    )
    return {(u, p, m, c): v for u, p, m, c, v in rows.all()}


async def test_rebuild_sql_matches_contribution_rules(db: AsyncSession, ctx: Scoring) -> None:
    p, c1, c2 = await tree(db)
    ds, ps, pts = mix(c1, c2)
    await upsert_facts(db, [*ds, *ps, *pts])
    incremental = await leaves(db, [c1, c2])
    assert incremental  # the Python rules, applied as deltas by the upsert
    await db.execute(text("UPDATE scoring.leaf_flows SET finished = finished + 5 WHERE unit_id = :u"),
                     {"u": c1})  # fmt: skip
    await db.execute(text("""INSERT INTO scoring.leaf_flows (unit_id, procedure, month, received)
                             VALUES (:u, 'X', '202503', 4)"""),
                     {"u": c2})  # fmt: skip
    await rebuild_province_year(db, ctx, p, 2025, AS_OF)
    assert await leaves(db, [c1, c2]) == incremental
    # every period's counters equal the reference aggregation over the pure leaf table
    # (stocks at the month ends; the year is complete at AS_OF)
    periods = periods_for_year(2025)
    ref = leaf_counters(dossiers=ds, procedures=ps, petitions=pts,
                        stock_months=sorted({p_.end_month for p_ in periods}), as_of=AS_OF)  # fmt: skip
    many = await period_counters_many(db, [p, c1, c2], periods, AS_OF)
    for period in periods:
        for u, members in ((p, {c1, c2}), (c1, {c1}), (c2, {c2})):
            want = {k: v for k, v in aggregate(ref, period, members).items() if v != 0}
            assert many[period.id][u] == want, (period.id, u)
    # a re-run changes nothing
    again = await rebuild_province_year(db, ctx, p, 2025, AS_OF)
    assert again.versions == 0 and again.pairs == 3 * 29
    # a first build (no leaf rows yet for those units and months: a plain insert) gives the same
    await db.execute(text("DELETE FROM scoring.leaf_flows WHERE unit_id = ANY(CAST(:u AS text[]))"),
                     {"u": [c1, c2]})  # fmt: skip
    fresh = await rebuild_province_year(db, ctx, p, 2025, AS_OF)
    assert await leaves(db, [c1, c2]) == incremental and fresh.versions == 0


async def test_period_counters_many_equals_one_period_at_a_time(db: AsyncSession) -> None:
    p, c1, c2 = await tree(db)
    ds, ps, pts = mix(c1, c2)
    await upsert_facts(db, [*ds, *ps, *pts])
    periods = [*periods_for_year(2025), Period.parse("2026Q1"), Period.parse("202602")]
    many = await period_counters_many(db, [p, c1, c2], periods, AS_OF)
    for period in periods:
        one = await period_counters_many(db, [p, c1, c2], [period], AS_OF)
        assert one[period.id] == many[period.id], period.id


async def test_spans_table_path_equals_inline_spans(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many members at once read the open-dossier spans from a parallel-built temp table; the
    figures are the same as with the spans computed inside the statement."""
    p, c1, c2 = await tree(db)
    ds, ps, pts = mix(c1, c2)
    await upsert_facts(db, [*ds, *ps, *pts])
    periods = [*periods_for_year(2025), Period.parse("2026Q1")]
    inline = await period_counters_many(db, [p, c1, c2], periods, AS_OF)
    monkeypatch.setattr(counters, "SPANS_TABLE_MIN_MEMBERS", 1)
    assert await period_counters_many(db, [p, c1, c2], periods, AS_OF) == inline


async def test_distinct_pairs_sum_a_negative_month_exactly(db: AsyncSession) -> None:
    """A (unit, procedure) pair with a negative month (deltas can leave one) counts for a period
    only if its flow summed over the period is > 0, as in the reference aggregation."""
    p, c1, c2 = await tree(db)
    ds, ps, pts = mix(c1, c2)
    await upsert_facts(db, [*ds, *ps, *pts])
    ref = leaf_counters(dossiers=ds, procedures=ps, petitions=pts,
                        stock_months=[pr.end_month for pr in periods_for_year(2025)],
                        as_of=AS_OF)  # fmt: skip
    # a pair with online dossiers in two months of one quarter; the second month is made to
    # cancel the first, so the quarter's sum is 0 although one of its months is > 0
    listed_online = {x.code for x in ps if x.unit_id == c1 and x.online_level != "none"
                     and x.published_on is None}  # fmt: skip
    online = {(u, proc, m): v for (u, proc, m, c), v in ref.items()
              if c == "received_online" and v > 0 and u == c1 and proc in listed_online
              and m.startswith("2025")}  # fmt: skip
    (u, proc, m1), (_, _, m2) = next(
        (a, b)
        for a in sorted(online)
        for b in sorted(online)
        if a[:2] == b[:2] and a[2] < b[2] and (int(a[2][4:]) - 1) // 3 == (int(b[2][4:]) - 1) // 3
    )
    delta = online[(u, proc, m1)] + online[(u, proc, m2)]
    ref[(u, proc, m2, "received_online")] -= delta
    await db.execute(
        text("""UPDATE scoring.leaf_flows SET received_online = received_online - :d
                WHERE unit_id = :u AND procedure = :p AND month = :m"""),
        {"d": delta, "u": u, "p": proc, "m": m2},
    )
    periods = periods_for_year(2025)
    many = await period_counters_many(db, [p, c1], periods, AS_OF)
    for period in periods:
        for u, members in ((p, {c1, c2}), (c1, {c1})):
            want = aggregate(ref, period, members)
            got = many[period.id][u]
            for name in ("proc_online_with_dossiers", "proc_fee_with_dossiers",
                         "proc_fee_paid_online"):  # fmt: skip
                assert got.get(name, 0) == want.get(name, 0), (period.id, u, name)


async def test_manual_counters_sum_over_a_period_beside_the_flows(db: AsyncSession) -> None:
    """Entered counters (`manual_counters`) are summed over a period's months next to the leaf
    flows; one that sums to 0 over the period is absent, like every zero counter."""
    p, c1, c2 = await tree(db)
    ds, ps, pts = mix(c1, c2)
    await upsert_facts(db, [*ds, *ps, *pts])
    before = await period_counters_many(db, [p, c1], [Period.parse("2025Q1")], AS_OF)
    await db.execute(
        text("""INSERT INTO scoring.manual_counters (unit_id, month, counter, value, entered_by)
                VALUES (:u, '202501', 'pds_used', 2.5, 't'), (:u, '202503', 'pds_used', 1, 't'),
                       (:u, '202502', 'pds_base', 4, 't'), (:u, '202503', 'pds_base', -4, 't'),
                       (:u, '202504', 'pds_used', 7, 't')"""),
        {"u": c1},
    )
    after = await period_counters_many(db, [p, c1], [Period.parse("2025Q1")], AS_OF)
    for u in (p, c1):
        assert after["2025Q1"][u] == {**before["2025Q1"][u], "pds_used": 3.5}, u
