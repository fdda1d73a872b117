"""Period counters of many units in a handful of set-based statements.

Mirrors `domain.facts.aggregate`: flows are sums of leaf counters over the period's months;
stocks are read from the facts at the period end (or as-of, for a running period); distinct
counters count (unit, procedure) pairs. Every figure of a unit covers its aggregation members
(subtree by materialised path, plus units merged into it — `registry.MEMBERS_CTE`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.facts import COUNTERS
from services.scoring.domain.periods import Period
from services.scoring.store.registry import MEMBERS_CTE

FLOWS = text(
    MEMBERS_CTE
    + """
SELECT m.agg, l.counter, sum(l.value)::float8 AS value
FROM members m JOIN scoring.leaf_counters l ON l.unit_id = m.member
WHERE l.month = ANY(CAST(:months AS text[]))
GROUP BY m.agg, l.counter
UNION ALL
SELECT m.agg, c.counter, sum(c.value)::float8
FROM members m JOIN scoring.manual_counters c ON c.unit_id = m.member
WHERE c.month = ANY(CAST(:months AS text[]))
GROUP BY m.agg, c.counter
"""
)

DOSSIER_STOCKS = text(
    MEMBERS_CTE
    + """
SELECT m.agg,
       count(*)::float8 AS open_at_end,
       count(*) FILTER (WHERE NOT f.late_by_rule
                        AND (f.eff_due_at IS NULL OR CAST(:at AS timestamptz) <= f.eff_due_at)
                       )::float8 AS open_within_time
FROM members m
JOIN scoring.facts f ON f.kind = 'dossier' AND f.unit_id = m.member
WHERE f.reception_at < :at
  AND (f.end_at IS NULL OR f.end_at >= :at)
  AND NOT f.paused
GROUP BY m.agg
"""
)

PROCEDURE_STOCKS = text(
    MEMBERS_CTE
    + """
SELECT m.agg,
       count(*)::float8 AS proc_total,
       count(*) FILTER (WHERE f.is_online)::float8 AS proc_online,
       count(*) FILTER (WHERE f.has_fee)::float8 AS proc_fee
FROM members m
JOIN scoring.facts f ON f.kind = 'procedure' AND f.unit_id = m.member
WHERE f.listed_from IS NULL OR f.listed_from < :at
GROUP BY m.agg
"""
)

DISTINCT = text(
    MEMBERS_CTE
    + """
, pairs AS (
    SELECT l.unit_id, l.procedure, l.counter
    FROM scoring.leaf_counters l
    WHERE l.month = ANY(CAST(:months AS text[]))
      AND l.counter IN ('received_online', 'received', 'paid_online')
      AND l.unit_id IN (SELECT member FROM members)
    GROUP BY l.unit_id, l.procedure, l.counter
    HAVING sum(l.value) > 0
)
SELECT m.agg,
  count(*) FILTER (WHERE p.counter = 'received_online' AND f.is_online)::float8
    AS proc_online_with_dossiers,
  count(*) FILTER (WHERE p.counter = 'received' AND f.has_fee)::float8 AS proc_fee_with_dossiers,
  count(*) FILTER (WHERE p.counter = 'paid_online' AND f.has_fee)::float8 AS proc_fee_paid_online
FROM members m
JOIN pairs p ON p.unit_id = m.member
JOIN scoring.facts f ON f.kind = 'procedure' AND f.unit_id = p.unit_id
     AND f.procedure = p.procedure AND (f.listed_from IS NULL OR f.listed_from < :at)
GROUP BY m.agg
"""
)


def stock_instant(period: Period, as_of: datetime) -> datetime:
    return min(period.end, as_of)


async def period_counters(
    session: AsyncSession, units: Sequence[str], period: Period, as_of: datetime
) -> dict[str, dict[str, float]]:
    """{unit: {counter: value}} for every unit in `units` (absent counters are 0)."""
    out: dict[str, dict[str, float]] = {u: defaultdict(float) for u in units}
    params = {"units": list(units), "months": list(period.months)}
    at = {"units": list(units), "at": stock_instant(period, as_of)}
    for agg, counter, value in (await session.execute(FLOWS, params)).all():
        out[agg][counter] += value
    for row in (await session.execute(DOSSIER_STOCKS, at)).mappings().all():
        c = out[row["agg"]]
        c["open_at_end"] += row["open_at_end"]
        c["open_within_time"] += row["open_within_time"]
        c["open_overdue"] += row["open_at_end"] - row["open_within_time"]
    for row in (await session.execute(PROCEDURE_STOCKS, at)).mappings().all():
        c = out[row["agg"]]
        for k in ("proc_total", "proc_online", "proc_fee"):
            c[k] += row[k]
    for row in (await session.execute(DISTINCT, {**params, "at": at["at"]})).mappings().all():
        c = out[row["agg"]]
        for k in ("proc_online_with_dossiers", "proc_fee_with_dossiers", "proc_fee_paid_online"):
            c[k] += row[k]
    result: dict[str, dict[str, float]] = {}
    for u, c in out.items():
        for d in COUNTERS.values():
            if d.kind == "derived":
                c[d.name] = sum(c.get(t, 0.0) for t in d.terms)
        result[u] = {k: v for k, v in sorted(c.items()) if v != 0}
    return result


BREAKDOWN = text(
    MEMBERS_CTE
    + """
SELECT l.procedure, l.unit_id, l.counter, sum(l.value)::float8 AS value
FROM members m JOIN scoring.leaf_counters l ON l.unit_id = m.member
WHERE l.month = ANY(CAST(:months AS text[])) AND l.counter = ANY(CAST(:counters AS text[]))
GROUP BY l.procedure, l.unit_id, l.counter
"""
)

LATE_OPEN = text(
    MEMBERS_CTE
    + """
SELECT f.procedure, f.unit_id, count(*)::float8 AS value
FROM members m JOIN scoring.facts f ON f.kind = 'dossier' AND f.unit_id = m.member
WHERE f.reception_at < :at AND (f.end_at IS NULL OR f.end_at >= :at) AND NOT f.paused
  AND (f.late_by_rule OR (f.eff_due_at IS NOT NULL AND CAST(:at AS timestamptz) > f.eff_due_at))
GROUP BY f.procedure, f.unit_id
"""
)


PROCEDURES_NOT_ONLINE = text(
    MEMBERS_CTE
    + """
SELECT f.procedure, f.unit_id, 1.0::float8
FROM members m JOIN scoring.facts f ON f.kind = 'procedure' AND f.unit_id = m.member
WHERE (f.listed_from IS NULL OR f.listed_from < :at) AND NOT f.is_online
"""
)

ONLINE_WITHOUT_DOSSIERS = text(
    MEMBERS_CTE
    + """
SELECT f.procedure, f.unit_id, 1.0::float8
FROM members m JOIN scoring.facts f ON f.kind = 'procedure' AND f.unit_id = m.member
WHERE (f.listed_from IS NULL OR f.listed_from < :at) AND f.is_online
  AND NOT EXISTS (
      SELECT 1 FROM scoring.leaf_counters l
      WHERE l.unit_id = f.unit_id AND l.procedure = f.procedure
        AND l.counter = 'received_online' AND l.month = ANY(CAST(:months AS text[]))
        AND l.value > 0)
"""
)


async def shortfall_breakdown(
    session: AsyncSession,
    unit: str,
    period: Period,
    as_of: datetime,
    numerator: str,
    denominator: str,
    shortfall_counter: str | None,
) -> list[tuple[str, str, float]]:
    """(procedure, unit, count) rows of an indicator's shortfall, for flow-based indicators
    (denominator − numerator per pair) and the late-dossier counter (flows + open overdue).
    For procedure-list indicators each row is one TTHC (not offered online; online without an
    online dossier). Other stock- and distinct-based indicators get no breakdown."""
    months = list(period.months)
    acc: dict[tuple[str, str], float] = defaultdict(float)
    at = stock_instant(period, as_of)
    if (numerator, denominator) == ("proc_online", "proc_total"):
        rows = await session.execute(PROCEDURES_NOT_ONLINE, {"units": [unit], "at": at})
        return sorted(((p, u, v) for p, u, v in rows.all()), key=lambda r: (r[1], r[0]))
    if (numerator, denominator) == ("proc_online_with_dossiers", "proc_online"):
        rows = await session.execute(
            ONLINE_WITHOUT_DOSSIERS, {"units": [unit], "at": at, "months": months}
        )
        return sorted(((p, u, v) for p, u, v in rows.all()), key=lambda r: (r[1], r[0]))
    if shortfall_counter == "late_total" or numerator == "on_time_or_within":
        rows = await session.execute(
            BREAKDOWN, {"units": [unit], "months": months, "counters": ["finished_late"]}
        )
        for proc, u, _, v in rows.all():
            acc[(proc, u)] += v
        late = await session.execute(
            LATE_OPEN, {"units": [unit], "at": stock_instant(period, as_of)}
        )
        for proc, u, v in late.all():
            acc[(proc, u)] += v
    else:
        num, den = COUNTERS[numerator], COUNTERS[denominator]
        if num.kind not in ("flow",) or den.kind not in ("flow",):
            return []
        rows = await session.execute(
            BREAKDOWN, {"units": [unit], "months": months, "counters": [numerator, denominator]}
        )
        for proc, u, counter, v in rows.all():
            acc[(proc, u)] += v if counter == denominator else -v
    return sorted(((p, u, v) for (p, u), v in acc.items() if v > 0), key=lambda r: (-r[2], r[0]))
