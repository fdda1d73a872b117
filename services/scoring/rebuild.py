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

from services.scoring.domain.facts import FLOW_COUNTERS
from services.scoring.domain.periods import VN_TZ, Period, month_of, periods_for_year
from services.scoring.recompute import RecomputeStats, Scoring, recompute
from services.scoring.store.counters import SPAN_INDEXES, stock_instants
from services.scoring.store.models import outbox_table
from services.scoring.store.registry import MEMBERS_CTE
from shared.db import make_engine, make_sessionmaker, transaction
from shared.events.outbox import Outbox
from shared.settings import Settings

VN_MONTH = "to_char(({}) AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYYMM')"

# Per dossier fact, read once from the typed columns and the stored record: the flags the flow
# counters test (`domain.facts.dossier_flows` with the default on-time rule, as SQL; the typed
# columns `reception_at`, `end_at`, `eff_due_at`, `late_by_rule`, `has_fee` are written by
# `fact_row` with the same rule).
DOSSIER_FACT_FLAGS = {
    "online": "(f.doc ->> 'channel') = '2'",
    "synced": "(f.doc ->> 'synced_national')::boolean",
    "fee": "f.has_fee",
    "paid": "(f.doc ->> 'paid_online') IN ('1', '2')",
    "digitised": "(f.doc ->> 'digitised')::boolean",
    "e_res": "(f.doc ->> 'has_e_result')::boolean",
    "reused": "(f.doc ->> 'reused_data')::boolean",
    "vneid": "(f.doc ->> 'vneid_verified')::boolean",
    "on_time": "NOT f.late_by_rule AND (f.eff_due_at IS NULL OR f.end_at <= f.eff_due_at)",
    "needs": "(f.doc ->> 'status') IN ('9', '10')",
    "pds": "(f.doc ->> 'pds_synced')::boolean",
    "citizen": "(f.doc ->> 'citizen_data_used')::boolean",
    # on time as last known (`is_on_time_at(d, d.source_updated_at)`)
    "known_on_time": "NOT f.late_by_rule AND (f.eff_due_at IS NULL"
    " OR least(f.end_at, f.source_updated_at) <= f.eff_due_at)",
    "hours": "greatest(0, floor(extract(epoch FROM f.end_at - f.reception_at) / 3600))",
}
# counter: (dated by reception (true) or by the end of processing, condition over the flags)
DOSSIER_FLOWS = {
    "received": (True, "true"),
    "received_online": (True, "online"),
    "synced": (True, "synced"),
    "fee_dossiers": (True, "fee"),
    "paid_online": (True, "fee AND paid"),
    "digitised": (True, "digitised"),
    "digitised_e_result": (True, "digitised AND e_res"),
    "reused": (True, "reused"),
    "vneid": (True, "vneid"),
    "finished": (False, "true"),
    "finished_on_time": (False, "on_time"),
    "finished_late": (False, "NOT on_time"),
    "needs_result": (False, "needs"),
    "e_result": (False, "needs AND e_res"),
    "received_e_result": (True, "e_res"),
    "pds_synced": (True, "pds"),
    "citizen_data_dossiers": (True, "citizen"),
    "received_online_on_time": (True, "online AND known_on_time"),
    "received_on_time": (True, "known_on_time"),
    "finished_hours": (False, "true"),
}
DOSSIER_SUMS = {"finished_hours": "hours"}
"""Flows that sum a value of each dossier (the flag named here) instead of counting them."""
assert set(DOSSIER_FLOWS) <= set(FLOW_COUNTERS)


def _scan_column(name: str, cond: str) -> str:
    if name in DOSSIER_SUMS:
        return f"    CAST(coalesce(sum({DOSSIER_SUMS[name]}) FILTER (WHERE {cond}), 0) AS int) AS {name}"
    return f"    CAST(count(*) FILTER (WHERE {cond}) AS int) AS {name}"


DOSSIER_SCAN = text(
    """
CREATE TEMP TABLE rebuild_dossiers ON COMMIT DROP AS
SELECT unit_id, procedure, rm, em, paused, lo, hi, hw, CAST(count(*) AS int) AS n,
"""
    + ",\n".join(_scan_column(name, cond) for name, (_, cond) in DOSSIER_FLOWS.items())
    + """
FROM (
    SELECT f.unit_id, f.procedure, f.paused,
           width_bucket(f.reception_at, CAST(:starts AS timestamptz[])) AS rm,
           width_bucket(f.end_at, CAST(:starts AS timestamptz[])) AS em,
           """
    + SPAN_INDEXES
    + """,
"""
    + ",\n".join(f"           {expr} AS {flag}" for flag, expr in DOSSIER_FACT_FLAGS.items())
    + """
    FROM scoring.facts f
    WHERE f.kind = 'dossier' AND f.unit_id = ANY(CAST(:u AS text[]))
      AND f.reception_at < CAST(:last_at AS timestamptz)
      AND (f.reception_at >= CAST(:first_at AS timestamptz)
           OR f.end_at >= CAST(:first_at AS timestamptz) OR f.end_at IS NULL)
) AS x
GROUP BY unit_id, procedure, rm, em, paused, lo, hi, hw
"""
)
"""One pass over the members' dossier facts, each read once (one `doc` lookup per flag): counts
per (unit, procedure, reception month index, end month index), the flows of both dates in one
row, and per open span (the stock instants a dossier is open at, `lo`..`hi`, within time up to
`hw`; see `store.counters`), the stocks of every period of the year. Indexes come from
`width_bucket` over the months' start instants (1 = first month, 0 before, len(months)+1
after, NULL when the date is absent) and over the stock instants, rather than formatting every
timestamp; both follow from the dates, so the spans add few groups (~10⁵ in all). A plain
`CREATE TABLE AS`, so PostgreSQL may scan the facts with parallel workers (a statement that also
writes to a table may not). Counts are `int`: the next statements sum them, and PostgreSQL sums
`int` in a 64-bit integer but `bigint` in `numeric`, ~25% of the leaf statement's time."""

SPANS_FROM_SCAN = text("""
CREATE TEMP TABLE period_spans ON COMMIT DROP AS
SELECT unit_id, lo, hi, hw, sum(n) AS n FROM rebuild_dossiers
WHERE NOT paused AND lo <= hi
GROUP BY unit_id, lo, hi, hw
""")

PROCEDURE_FLOWS = {
    # counter: (the procedure date that dates it, condition)
    "proc_published": ("pub", "d.pub IS NOT NULL"),
    "proc_published_on_time": ("pub", "d.pub IS NOT NULL AND (d.pub_due IS NULL OR d.pub <= d.pub_due)"),
    "proc_public_due": ("pu_due", "d.pu_due IS NOT NULL"),
    "proc_public_on_time": ("pu_due", "d.pu_due IS NOT NULL AND d.pu IS NOT NULL AND d.pu <= d.pu_due"),
    "proc_public": ("pu", "d.pu IS NOT NULL"),
    "proc_public_complete": ("pu", "d.pu IS NOT NULL AND d.complete"),
}  # fmt: skip
PETITION_FLOWS = {
    "pakn_handled": "true",
    "pakn_handled_on_time": "d.due IS NULL OR d.handled <= d.due",
    "pakn_rated": "d.satisfied IS NOT NULL",
    "pakn_satisfied": "d.satisfied IS TRUE",
    "pakn_about_tthc": "d.category = 'tthc'",
    "pakn_about_staff": "d.category = 'staff'",
}
assert set(DOSSIER_FLOWS) | set(PROCEDURE_FLOWS) | set(PETITION_FLOWS) == set(FLOW_COUNTERS)
_DATES = ("pub", "pu_due", "pu")


def _sums(names: list[str]) -> str:
    return ", ".join(f"sum({c}) AS {c}" for c in names)


_REC = [n for n, (rec, _) in DOSSIER_FLOWS.items() if rec]
_END = [n for n, (rec, _) in DOSSIER_FLOWS.items() if not rec]
_NO_DOSSIER_OR_PROCEDURE_FLOWS = ", ".join(f"0 AS {c}" for c in (*_REC, *_END, *PROCEDURE_FLOWS))

LEAF_NEW = f"""
WITH months AS (
    SELECT m.month, m.i FROM unnest(CAST(:m AS text[])) WITH ORDINALITY AS m(month, i)
),
rec AS (
    SELECT unit_id, procedure, rm AS i, {_sums(_REC)}
    FROM rebuild_dossiers WHERE rm BETWEEN 1 AND :nm GROUP BY 1, 2, 3
),
fin AS (
    SELECT unit_id, procedure, em AS i, {_sums(_END)}
    FROM rebuild_dossiers WHERE rm IS NOT NULL AND em BETWEEN 1 AND :nm GROUP BY 1, 2, 3
),
dossiers AS (
    SELECT coalesce(r.unit_id, e.unit_id) AS unit_id,
           coalesce(r.procedure, e.procedure) AS procedure, mo.month,
           {", ".join(f"coalesce(r.{c}, 0) AS {c}" for c in _REC)},
           {", ".join(f"coalesce(e.{c}, 0) AS {c}" for c in _END)}
    FROM rec r FULL JOIN fin e
         ON e.unit_id = r.unit_id AND e.procedure = r.procedure AND e.i = r.i
    JOIN months mo ON mo.i = coalesce(r.i, e.i)
),
procedures AS (
    SELECT f.unit_id, f.procedure, x.month,
           {
    ", ".join(
        f"count(*) FILTER (WHERE x.at = '{at}' AND {cond}) AS {c}"
        for c, (at, cond) in PROCEDURE_FLOWS.items()
    )
}
    FROM scoring.facts f
    CROSS JOIN LATERAL (
        SELECT CAST(f.doc ->> 'published_on' AS date) AS pub,
               CAST(f.doc ->> 'publish_due_on' AS date) AS pub_due,
               CAST(f.doc ->> 'public_on' AS date) AS pu,
               CAST(f.doc ->> 'public_due_on' AS date) AS pu_due,
               coalesce((f.doc ->> 'content_complete')::boolean, true) AS complete
    ) AS d
    CROSS JOIN LATERAL (VALUES {", ".join(f"('{at}', to_char(d.{at}, 'YYYYMM'))" for at in _DATES)})
        AS x(at, month)
    WHERE f.kind = 'procedure' AND f.unit_id = ANY(CAST(:u AS text[]))
      AND x.month = ANY(CAST(:m AS text[]))
    GROUP BY 1, 2, 3
),
petitions AS (
    SELECT f.unit_id, f.procedure, {VN_MONTH.format("d.handled")} AS month,
           {
    ", ".join(f"count(*) FILTER (WHERE {cond}) AS {c}" for c, cond in PETITION_FLOWS.items())
}
    FROM scoring.facts f
    CROSS JOIN LATERAL (
        SELECT CAST(f.doc ->> 'handled_at' AS timestamptz) AS handled,
               CAST(f.doc ->> 'due_at' AS timestamptz) AS due,
               (f.doc ->> 'satisfied')::boolean AS satisfied,
               f.doc ->> 'category' AS category
    ) AS d
    WHERE f.kind = 'petition' AND f.unit_id = ANY(CAST(:u AS text[])) AND d.handled IS NOT NULL
      AND d.handled >= CAST(:first_at AS timestamptz) AND d.handled < CAST(:last_at AS timestamptz)
    GROUP BY 1, 2, 3
),
new AS (
    -- a dossier procedure may also have procedure-list flows in the same month
    SELECT coalesce(d.unit_id, p.unit_id) AS unit_id,
           coalesce(d.procedure, p.procedure) AS procedure,
           coalesce(d.month, p.month) AS month,
           {", ".join(f"coalesce(d.{c}, 0) AS {c}" for c in _REC + _END)},
           {", ".join(f"coalesce(p.{c}, 0) AS {c}" for c in PROCEDURE_FLOWS)},
           {", ".join(f"0 AS {c}" for c in PETITION_FLOWS)}
    FROM dossiers d FULL JOIN procedures p
         ON p.unit_id = d.unit_id AND p.procedure = d.procedure AND p.month = d.month
    UNION ALL
    SELECT unit_id, procedure, month, {_NO_DOSSIER_OR_PROCEDURE_FLOWS},
           {", ".join(PETITION_FLOWS)}
    FROM petitions
)
"""
"""The leaf flows of `:u` for months `:m` (consecutive, the indexes of `rebuild_dossiers`),
recomputed from the facts: CTEs ending in `new`, one row per (unit, procedure, month). `new` is
not marked MATERIALIZED: PostgreSQL materialises it where it is read twice (the difference) and
streams it into a plain insert."""

LEAF_FROM_FACTS = text(
    LEAF_NEW
    + f""",
gone AS (
    DELETE FROM scoring.leaf_flows l
    WHERE l.unit_id = ANY(CAST(:u AS text[])) AND l.month = ANY(CAST(:m AS text[]))
      AND NOT EXISTS (SELECT FROM new n WHERE n.unit_id = l.unit_id AND n.month = l.month
                                           AND n.procedure = l.procedure)
)
INSERT INTO scoring.leaf_flows AS l (unit_id, procedure, month, {", ".join(FLOW_COUNTERS)})
SELECT unit_id, procedure, month, {", ".join(FLOW_COUNTERS)} FROM new
ON CONFLICT (unit_id, month, procedure) DO UPDATE
SET {", ".join(f"{c} = excluded.{c}" for c in FLOW_COUNTERS)}
WHERE ({", ".join(f"l.{c}" for c in FLOW_COUNTERS)})
      IS DISTINCT FROM ({", ".join(f"excluded.{c}" for c in FLOW_COUNTERS)})
"""
)
"""Writes the leaf flows as a difference: rows that no longer exist are deleted, changed rows
updated, equal rows left alone."""

LEAF_INSERT = text(
    LEAF_NEW
    + f"""
INSERT INTO scoring.leaf_flows (unit_id, procedure, month, {", ".join(FLOW_COUNTERS)})
SELECT unit_id, procedure, month, {", ".join(FLOW_COUNTERS)} FROM new
"""
)
"""Writes the leaf flows where the units have none for those months yet (a first build): a plain
insert, without the conflict checks of the difference (about half its cost)."""

HAS_LEAVES = text("""
SELECT EXISTS (SELECT FROM scoring.leaf_flows
               WHERE unit_id = ANY(CAST(:u AS text[])) AND month = ANY(CAST(:m AS text[])))
""")


def month_starts(months: list[str]) -> list[datetime]:
    """The start instants (Vietnam time) of consecutive `months`, and the end of the last."""
    y, m = int(months[-1][:4]), int(months[-1][4:])
    after = f"{y + m // 12:04d}{m % 12 + 1:02d}"
    return [datetime(int(x[:4]), int(x[4:]), 1, tzinfo=VN_TZ) for x in [*months, after]]


async def rebuild_province_year(
    session: AsyncSession,
    ctx: Scoring,
    province: str,
    year: int,
    as_of: datetime | None = None,
    *,
    today: date | None = None,
    rescore: bool = False,
) -> RecomputeStats:
    """`rescore`: score every unit-period again, also those whose counters are unchanged since
    their latest snapshot (after a change of the engine's code under the same profile version;
    a profile's own changes are new versions, scored in full)."""
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
    # Event consumers wait (their leaf deltas, in the same transaction as their facts) until the
    # rebuild commits: the facts it reads and the leaves it writes stay consistent, and a delta
    # applied afterwards lands on the rebuilt figures. Readers are not blocked.
    await session.execute(text("LOCK TABLE scoring.leaf_flows IN SHARE ROW EXCLUSIVE MODE"))
    await session.execute(text("DROP TABLE IF EXISTS pg_temp.rebuild_dossiers"))
    await session.execute(text("DROP TABLE IF EXISTS pg_temp.period_spans"))
    now_m = month_of(as_of)
    last = 12 if as_of >= year_p.end else (int(now_m[4:]) if now_m[:4] == str(year) else 1)
    periods = periods_for_year(year, last)
    # every period's stock instant is a month's: its end, or as-of for the running month
    instants = stock_instants([p for p in periods if p.kind == "month"], as_of)
    starts = month_starts(months)
    # the planner estimates the groups as a product of distinct counts (~10⁶, really ~10⁵) and
    # would sort 2M rows by text keys; hashing them is ~2× faster
    await session.execute(text("SET LOCAL enable_sort = off"))
    await session.execute(text("SET LOCAL enable_incremental_sort = off"))
    await session.execute(
        DOSSIER_SCAN,
        {"u": members, "starts": starts, "first_at": starts[0], "last_at": starts[-1],
         "instants": instants, "n": len(instants)},
    )  # fmt: skip
    await session.execute(text("SET LOCAL enable_sort = on"))
    await session.execute(text("SET LOCAL enable_incremental_sort = on"))
    # the next statements group and join its ~10⁵ rows: give the planner their real count
    await session.execute(text("ANALYZE pg_temp.rebuild_dossiers (unit_id, procedure, rm, em)"))
    await session.execute(SPANS_FROM_SCAN)
    first = not (await session.execute(HAS_LEAVES, {"u": members, "m": months})).scalar()
    await session.execute(
        LEAF_INSERT if first else LEAF_FROM_FACTS,
        {"u": members, "m": months, "nm": len(months), "first_at": starts[0],
         "last_at": starts[-1]},
    )  # fmt: skip
    await session.execute(
        text("""
        DELETE FROM scoring.stale
        WHERE unit_id = ANY(CAST(:u AS text[])) AND month = ANY(CAST(:m AS text[]))
        """),
        {"u": members, "m": months},
    )
    return await recompute(
        session, ctx, members, periods, as_of, today=today, spans_instants=instants,
        rescore=rescore,
    )  # fmt: skip


async def main_async(province: str, year: int, *, rescore: bool = False) -> RecomputeStats:
    settings = Settings(service_name="scoring")
    engine = make_engine(settings.async_database_url, schema="scoring")
    try:
        ctx = Scoring(outbox=Outbox(outbox_table, "/cchc-monitor/scoring"))
        async with transaction(make_sessionmaker(engine)) as session:
            return await rebuild_province_year(session, ctx, province, year, rescore=rescore)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--province", required=True)
    parser.add_argument("--year", type=int, required=True)
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="score unit-periods whose counters are unchanged too (after an engine change)",
    )
    args = parser.parse_args()
    stats = asyncio.run(main_async(args.province, args.year, rescore=args.rescore))
    print(json.dumps(stats.__dict__))


if __name__ == "__main__":
    main()
