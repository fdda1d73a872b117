"""Full rebuild of a province-year: `python -m services.scoring.rebuild --province P21 --year 2026`.

Recomputes the leaf counters of every unit aggregated into the province (its subtree and the
units merged into it) for the year's months from the stored facts, then every period of the year
(months, quarters, YTD, year) with ranks and alerts. One transaction; safe to re-run (snapshots
only get a new version where something changed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.periods import Period, month_of, periods_for_year
from services.scoring.recompute import RecomputeStats, Scoring, recompute
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import MEMBERS_CTE
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.outbox import Outbox
from shared.settings import Settings

VN_MONTH = "to_char(({}) AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYYMM')"
DOSSIER_FLAGS = {
    # counter: (dated by reception (true) or by the end of processing, condition)
    "received": (True, "true"),
    "received_online": (True, "(f.doc ->> 'channel') = '2'"),
    "synced": (True, "(f.doc ->> 'synced_national')::boolean"),
    "fee_dossiers": (True, "f.has_fee"),
    "paid_online": (True, "f.has_fee AND (f.doc ->> 'paid_online') IN ('1', '2')"),
    "digitised": (True, "(f.doc ->> 'digitised')::boolean"),
    "digitised_e_result": (
        True, "(f.doc ->> 'digitised')::boolean AND (f.doc ->> 'has_e_result')::boolean"),
    "reused": (True, "(f.doc ->> 'reused_data')::boolean"),
    "vneid": (True, "(f.doc ->> 'vneid_verified')::boolean"),
    "finished": (False, "true"),
    "finished_on_time": (
        False, "NOT f.late_by_rule AND (f.eff_due_at IS NULL OR f.end_at <= f.eff_due_at)"),
    "finished_late": (
        False, "NOT (NOT f.late_by_rule AND (f.eff_due_at IS NULL OR f.end_at <= f.eff_due_at))"),
    "needs_result": (False, "(f.doc ->> 'status') IN ('9', '10')"),
    "e_result": (
        False, "(f.doc ->> 'status') IN ('9', '10') AND (f.doc ->> 'has_e_result')::boolean"),
}  # fmt: skip
"""`domain.facts.dossier_flows` (default on-time rule) as SQL over the typed fact columns
(`reception_at`, `end_at`, `eff_due_at`, `late_by_rule`, `has_fee`, written by `fact_row` with
the same rule) and the stored record."""

DOSSIER_WIDE = text(
    """
CREATE TEMP TABLE rebuild_dossiers ON COMMIT DROP AS
    SELECT f.unit_id, f.procedure, e.month,
"""
    + ",\n".join(
        f"        count(*) FILTER (WHERE {'e.rec' if rec else 'NOT e.rec'} AND {cond}) AS {name}"
        for name, (rec, cond) in DOSSIER_FLAGS.items()
    )
    + f"""
    FROM scoring.facts f
    CROSS JOIN LATERAL (VALUES ({VN_MONTH.format("f.reception_at")}, true),
        (CASE WHEN f.reception_at IS NOT NULL THEN {VN_MONTH.format("f.end_at")} END, false))
        AS e(month, rec)
    WHERE f.kind = 'dossier' AND f.unit_id = ANY(CAST(:u AS text[]))
      AND e.month = ANY(CAST(:m AS text[]))
    GROUP BY f.unit_id, f.procedure, e.month
"""
)
"""The dossier flows of the members' facts by (unit, procedure, month), one column per counter:
a plain `CREATE TABLE AS` so PostgreSQL may scan the facts with parallel workers (a statement
that also writes to a table may not)."""

LEAF_FROM_FACTS = text(
    f"""
WITH others AS (
    SELECT f.unit_id, f.procedure, c.month, c.counter, count(*) AS value
    FROM scoring.facts f
    CROSS JOIN LATERAL (
        SELECT f.doc ->> 'published_on' AS pub, f.doc ->> 'publish_due_on' AS pub_due,
               f.doc ->> 'public_on' AS pu, f.doc ->> 'public_due_on' AS pu_due,
               coalesce((f.doc ->> 'content_complete')::boolean, true) AS complete,
               CAST(f.doc ->> 'handled_at' AS timestamptz) AS handled,
               CAST(f.doc ->> 'due_at' AS timestamptz) AS due,
               (f.doc ->> 'satisfied')::boolean AS satisfied
    ) AS d
    CROSS JOIN LATERAL (VALUES
        ('procedure', replace(left(d.pub, 7), '-', ''), 'proc_published', d.pub IS NOT NULL),
        ('procedure', replace(left(d.pub, 7), '-', ''), 'proc_published_on_time',
         d.pub IS NOT NULL AND (d.pub_due IS NULL OR CAST(d.pub AS date) <= CAST(d.pub_due AS date))),
        ('procedure', replace(left(d.pu_due, 7), '-', ''), 'proc_public_due', d.pu_due IS NOT NULL),
        ('procedure', replace(left(d.pu_due, 7), '-', ''), 'proc_public_on_time',
         d.pu_due IS NOT NULL AND d.pu IS NOT NULL
         AND CAST(d.pu AS date) <= CAST(d.pu_due AS date)),
        ('procedure', replace(left(d.pu, 7), '-', ''), 'proc_public', d.pu IS NOT NULL),
        ('procedure', replace(left(d.pu, 7), '-', ''), 'proc_public_complete',
         d.pu IS NOT NULL AND d.complete),
        ('petition', {VN_MONTH.format("d.handled")}, 'pakn_handled', d.handled IS NOT NULL),
        ('petition', {VN_MONTH.format("d.handled")}, 'pakn_handled_on_time',
         d.handled IS NOT NULL AND (d.due IS NULL OR d.handled <= d.due)),
        ('petition', {VN_MONTH.format("d.handled")}, 'pakn_rated',
         d.handled IS NOT NULL AND d.satisfied IS NOT NULL),
        ('petition', {VN_MONTH.format("d.handled")}, 'pakn_satisfied',
         d.handled IS NOT NULL AND d.satisfied IS TRUE)
    ) AS c(kind, month, counter, hit)
    WHERE f.kind IN ('procedure', 'petition') AND f.unit_id = ANY(CAST(:u AS text[]))
      AND c.kind = f.kind AND c.hit AND c.month = ANY(CAST(:m AS text[]))
    GROUP BY 1, 2, 3, 4
),
new AS (
    SELECT d.unit_id, d.procedure, d.month, v.counter, v.value
    FROM rebuild_dossiers d
    CROSS JOIN LATERAL (VALUES """
    + ", ".join(f"('{name}', d.{name})" for name in DOSSIER_FLAGS)
    + """) AS v(counter, value)
    WHERE v.value > 0
    UNION ALL
    SELECT unit_id, procedure, month, counter, value FROM others
),
cur AS (
    SELECT l.ctid AS row_id, l.unit_id, l.procedure, CAST(l.month AS text) AS month, l.counter,
           l.value
    FROM scoring.leaf_counters l
    WHERE l.unit_id = ANY(CAST(:u AS text[])) AND l.month = ANY(CAST(:m AS text[]))
),
gone AS (
    DELETE FROM scoring.leaf_counters l
    USING (SELECT c.row_id FROM cur c LEFT JOIN new n USING (unit_id, procedure, month, counter)
           WHERE n.unit_id IS NULL) g
    WHERE l.ctid = g.row_id
)
INSERT INTO scoring.leaf_counters AS l (unit_id, procedure, month, counter, value)
SELECT n.unit_id, n.procedure, n.month, n.counter, n.value
FROM new n LEFT JOIN cur c USING (unit_id, procedure, month, counter)
WHERE c.value IS DISTINCT FROM n.value
ON CONFLICT (unit_id, month, counter, procedure) DO UPDATE SET value = excluded.value
"""
)
"""The leaf counters of `:u` for months `:m`, recomputed from the facts in one statement (one
pass over the dossier facts, grouped by unit, procedure and month), written as a difference:
rows that no longer exist are deleted, changed values updated, equal rows left alone."""


async def rebuild_province_year(
    session: AsyncSession,
    ctx: Scoring,
    province: str,
    year: int,
    as_of: datetime | None = None,
    *,
    today: date | None = None,
) -> RecomputeStats:
    as_of = as_of or datetime.now(UTC)
    members = list(
        (
            await session.execute(
                text(MEMBERS_CTE + "SELECT member FROM members ORDER BY member"),
                {"units": [province]},
            )
        ).scalars()
    )
    year_p = Period.parse(str(year))
    months = list(year_p.months)
    # a batch job: room for the hash aggregates of a province-year
    await session.execute(text("SET LOCAL work_mem = '256MB'"))
    await session.execute(text("DROP TABLE IF EXISTS pg_temp.rebuild_dossiers"))
    await session.execute(DOSSIER_WIDE, {"u": members, "m": months})
    # the diff joins ~10⁶ rows on text keys: hash them (a merge join sorts them by collation)
    await session.execute(text("SET LOCAL enable_mergejoin = off"))
    await session.execute(LEAF_FROM_FACTS, {"u": members, "m": months})
    await session.execute(text("SET LOCAL enable_mergejoin = on"))
    await session.execute(
        text("""
        DELETE FROM scoring.stale
        WHERE unit_id = ANY(CAST(:u AS text[])) AND month = ANY(CAST(:m AS text[]))
        """),
        {"u": members, "m": months},
    )
    now_m = month_of(as_of)
    last = 12 if as_of >= year_p.end else (int(now_m[4:]) if now_m[:4] == str(year) else 1)
    return await recompute(session, ctx, members, periods_for_year(year, last), as_of, today=today)


async def main_async(province: str, year: int) -> RecomputeStats:
    settings = Settings(service_name="scoring")
    engine = make_engine(settings.async_database_url, schema="scoring")
    try:
        ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"))
        async with transaction(make_sessionmaker(engine)) as session:
            return await rebuild_province_year(session, ctx, province, year)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", required=True)
    parser.add_argument("--year", type=int, required=True)
    args = parser.parse_args()
    stats = asyncio.run(main_async(args.province, args.year))
    print(json.dumps(stats.__dict__))


if __name__ == "__main__":
    main()
