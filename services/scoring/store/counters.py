"""Period counters of many units in a handful of set-based statements.

Mirrors `domain.facts.aggregate`: flows are sums of leaf counters over the period's months;
stocks are read from the facts at the period end (or as-of, for a running period); distinct
counters count (unit, procedure) pairs. Every figure of a unit covers its aggregation members
(subtree by materialised path, plus units merged into it — `registry.MEMBERS_CTE`): it is the
sum of the members' own counters (each member's facts only), which are kept per (unit, period)
in `own_counters`, so a refresh after an event recomputes only the members that changed and
never reads the facts of the whole province.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.facts import COUNTERS, FLOW_COUNTERS, derived_value
from services.scoring.domain.periods import Period
from services.scoring.domain.validity import Validity, scored
from services.scoring.store.registry import MEMBERS_CTE

PERIOD_COUNTERS_SQL = """
WITH per AS (
    SELECT * FROM jsonb_to_recordset(CAST(:periods AS jsonb))
        AS p(pid text, mask bigint, k int, at timestamptz)
),
pm AS (
    SELECT p.pid, m.month FROM per p
    CROSS JOIN LATERAL unnest(CAST(:months AS text[])) WITH ORDINALITY AS m(month, i)
    WHERE (p.mask >> (m.i::int - 1)) & 1 = 1
),
leaf_months AS (
    SELECT l.unit_id, l.month, {leaf_sums}
    FROM scoring.leaf_flows l
    WHERE l.unit_id = ANY(CAST(:mem AS text[])) AND l.month = ANY(CAST(:months AS text[]))
    GROUP BY l.unit_id, l.month
),
-- flows summed over each period's months while still one row per (unit, period)
period_flows AS (
    SELECT m.unit_id, pm.pid, {period_sums}
    FROM leaf_months m JOIN pm ON pm.month = m.month
    GROUP BY m.unit_id, pm.pid
),
manual AS (
    SELECT c.unit_id, pm.pid, c.counter, sum(c.value)::float8 AS value
    FROM scoring.manual_counters c JOIN pm ON pm.month = c.month
    WHERE c.unit_id = ANY(CAST(:mem AS text[])) AND c.month = ANY(CAST(:months AS text[]))
    GROUP BY c.unit_id, pm.pid, c.counter
),
-- dossier stocks: open at instant k iff k in [lo, hi]; within time iff k in [lo, least(hi, hw)]
{spans}dstock AS (
    SELECT s.unit_id, k.k, sum(s.n) AS open_at_end,
           coalesce(sum(s.n) FILTER (WHERE k.k <= s.hw), 0) AS open_within_time
    FROM spans s JOIN generate_series(1, :n) AS k(k) ON k.k BETWEEN s.lo AND s.hi
    GROUP BY s.unit_id, k.k
),
procs AS (
    SELECT f.unit_id, f.procedure, f.listed_from, f.is_online, f.has_fee,
           coalesce((f.doc ->> 'full_online_eligible')::boolean, false) AS full_eligible,
           (f.doc ->> 'online_level') = 'full' AS full_online,
           coalesce((f.doc ->> 'citizen_data_connected')::boolean, false) AS citizen_data,
           coalesce((f.doc ->> 'certification')::boolean, false) AS cert,
           coalesce((f.doc ->> 'e_certified_copy')::boolean, false) AS e_cert
    FROM scoring.facts f
    WHERE f.kind = 'procedure' AND f.unit_id = ANY(CAST(:mem AS text[]))
),
pstock AS (
    SELECT f.unit_id, p.pid, count(*) AS proc_total,
           count(*) FILTER (WHERE f.is_online) AS proc_online,
           count(*) FILTER (WHERE f.has_fee) AS proc_fee,
           count(*) FILTER (WHERE f.full_eligible) AS proc_full_eligible,
           count(*) FILTER (WHERE f.full_eligible AND f.full_online) AS proc_online_full,
           count(*) FILTER (WHERE f.citizen_data) AS proc_citizen_data,
           count(*) FILTER (WHERE f.cert) AS proc_e_cert,
           count(*) FILTER (WHERE f.cert AND f.e_cert) AS proc_e_cert_online
    FROM procs f JOIN per p ON f.listed_from IS NULL OR f.listed_from < p.at
    GROUP BY f.unit_id, p.pid
),
-- distinct: (unit, procedure) pairs whose flow summed over the period is > 0; leaf counts are
-- never negative, so that is "some month of the period is > 0" (a month mask), except for a
-- pair with a negative month, which is summed exactly
pair_wide AS (
    SELECT l.unit_id, l.procedure,
           {pair_masks}
    FROM scoring.leaf_flows l
    WHERE l.month = ANY(CAST(:months AS text[])) AND l.unit_id = ANY(CAST(:mem AS text[]))
    GROUP BY l.unit_id, l.procedure
),
pair_masks AS (
    SELECT w.unit_id, w.procedure, v.counter, v.mask, v.negative
    FROM pair_wide w CROSS JOIN LATERAL (VALUES {pair_values}) AS v(counter, mask, negative)
    WHERE v.mask IS NOT NULL OR v.negative
),
-- the months of pairs with a negative month (rare), summed exactly per period below
pair_months AS (
    SELECT l.unit_id, l.procedure, v.counter, l.month, v.value
    FROM scoring.leaf_flows l
    CROSS JOIN LATERAL (VALUES ('received_online', l.received_online), ('received', l.received),
                               ('paid_online', l.paid_online)) AS v(counter, value)
    WHERE l.month = ANY(CAST(:months AS text[])) AND l.unit_id = ANY(CAST(:mem AS text[]))
      AND v.value <> 0
),
pair_procs AS (
    -- only the pairs a distinct counter can count: online TTHC for online dossiers, fee TTHC
    SELECT x.unit_id, x.procedure, x.counter, x.mask, x.negative, f.listed_from
    FROM pair_masks x JOIN procs f ON f.unit_id = x.unit_id AND f.procedure = x.procedure
    WHERE CASE x.counter WHEN 'received_online' THEN f.is_online ELSE f.has_fee END
),
pair_periods AS (
    SELECT x.unit_id, x.counter, p.pid
    FROM pair_procs x JOIN per p ON x.mask & p.mask <> 0
    WHERE NOT x.negative AND (x.listed_from IS NULL OR x.listed_from < p.at)
    UNION ALL
    SELECT x.unit_id, x.counter, pm.pid
    FROM pair_months x
    JOIN pair_procs n ON n.negative AND n.unit_id = x.unit_id AND n.procedure = x.procedure
         AND n.counter = x.counter
    JOIN pm ON pm.month = x.month
    JOIN per p ON p.pid = pm.pid
    WHERE n.listed_from IS NULL OR n.listed_from < p.at
    GROUP BY x.unit_id, x.procedure, x.counter, pm.pid
    HAVING sum(x.value) > 0
),
dist AS (
    SELECT unit_id, pid,
      count(*) FILTER (WHERE counter = 'received_online') AS proc_online_with_dossiers,
      count(*) FILTER (WHERE counter = 'received') AS proc_fee_with_dossiers,
      count(*) FILTER (WHERE counter = 'paid_online') AS proc_fee_paid_online
    FROM pair_periods
    GROUP BY unit_id, pid
),
-- one wide row per (unit, period): each source gives its own counters, so no counter is summed
-- across sources (the manual ones, which may repeat a name, come apart as a JSON object)
wide AS (
    SELECT unit_id, pid, {wide_flows}, {no_stocks} FROM period_flows
    UNION ALL
    SELECT d.unit_id, p.pid, {no_flows}, d.open_at_end, d.open_within_time, {no_procs}, {no_dist},
           {no_procs2}
    FROM dstock d JOIN per p ON p.k = d.k
    UNION ALL
    SELECT s.unit_id, s.pid, {no_flows}, {no_open}, s.proc_total, s.proc_online, s.proc_fee,
           {no_dist}, s.proc_full_eligible, s.proc_online_full, s.proc_citizen_data,
           s.proc_e_cert, s.proc_e_cert_online
    FROM pstock s
    UNION ALL
    SELECT s.unit_id, s.pid, {no_flows}, {no_open}, {no_procs}, s.proc_online_with_dossiers,
           s.proc_fee_with_dossiers, s.proc_fee_paid_online, {no_procs2}
    FROM dist s
),
unit_rows AS (
    SELECT unit_id, pid, {wide_sums} FROM wide GROUP BY unit_id, pid
),
manual_json AS (
    SELECT unit_id, pid, CAST(json_object_agg(counter, value) AS text) AS counters
    FROM manual WHERE value <> 0 GROUP BY unit_id, pid
)
-- one row per (unit, period) with its non-zero counters as a JSON object: ~30× fewer rows for
-- the client to decode than one per counter
SELECT coalesce(w.unit_id, m.unit_id) AS unit_id, coalesce(w.pid, m.pid) AS pid,
       CAST(json_strip_nulls(json_build_object({json_pairs})) AS text) AS counters,
       m.counters AS manual
FROM unit_rows w FULL JOIN manual_json m ON m.unit_id = w.unit_id AND m.pid = w.pid
"""
SPAN_INDEXES = """width_bucket(f.reception_at, CAST(:instants AS timestamptz[])) + 1 AS lo,
           CASE WHEN f.end_at IS NULL THEN :n
                ELSE width_bucket(f.end_at, CAST(:instants AS timestamptz[])) END AS hi,
           CASE WHEN f.late_by_rule THEN 0 WHEN f.eff_due_at IS NULL THEN :n
                ELSE width_bucket(f.eff_due_at, CAST(:instants AS timestamptz[])) END AS hw"""
"""A dossier fact `f`'s open span over the stock instants `:instants` (`:n` of them): open at
instant k iff lo <= k <= hi, within time iff k <= hw as well. One definition for the spans read
here and the ones the rebuild groups in its scan of the facts."""

SPANS_SELECT = f"""
    SELECT f.unit_id,
           {SPAN_INDEXES},
           count(*) AS n
    FROM scoring.facts f
    WHERE f.kind = 'dossier' AND f.unit_id = ANY(CAST(:mem AS text[])) AND NOT f.paused
      AND f.reception_at < CAST(:last_at AS timestamptz)
      AND (f.end_at IS NULL OR f.end_at >= CAST(:first_at AS timestamptz))
    GROUP BY 1, 2, 3, 4
"""
DISTINCT_FLOWS = ("received_online", "received", "paid_online")
"""The flow counters a distinct counter tests (`COUNTERS[...].flow`)."""
_MONTH_BIT = "(CAST(1 AS bigint) << (array_position(CAST(:months AS text[]), l.month) - 1))"
_STOCKS = (
    "open_at_end", "open_within_time", "proc_total", "proc_online", "proc_fee",
    "proc_online_with_dossiers", "proc_fee_with_dossiers", "proc_fee_paid_online",
    "proc_full_eligible", "proc_online_full", "proc_citizen_data", "proc_e_cert",
    "proc_e_cert_online",
)  # fmt: skip
"""The counters of a `wide` row after the flows, in its column order."""
_VALUE = {"open_overdue": "open_at_end - open_within_time"}
_FILL = {
    "leaf_sums": ", ".join(f"sum(l.{c}) AS {c}" for c in FLOW_COUNTERS),
    "period_sums": ", ".join(f"sum(m.{c}) AS {c}" for c in FLOW_COUNTERS),
    "wide_flows": ", ".join(f"CAST({c} AS float8) AS {c}" for c in FLOW_COUNTERS),
    "wide_sums": ", ".join(f"sum({c}) AS {c}" for c in (*FLOW_COUNTERS, *_STOCKS)),
    "no_flows": ", ".join("NULL" for _ in FLOW_COUNTERS),
    "no_stocks": ", ".join(f"CAST(NULL AS float8) AS {c}" for c in _STOCKS),
    "no_open": "NULL, NULL",
    "no_procs": "NULL, NULL, NULL",
    "no_dist": "NULL, NULL, NULL",
    "no_procs2": "NULL, NULL, NULL, NULL, NULL",
    "json_pairs": ", ".join(
        f"'{c}', nullif({_VALUE.get(c, c)}, 0)" for c in (*FLOW_COUNTERS, *_STOCKS, "open_overdue")
    ),
    "pair_masks": ",\n           ".join(
        f"bit_or({_MONTH_BIT}) FILTER (WHERE l.{c} > 0) AS mask_{c}, "
        f"bool_or(l.{c} < 0) AS negative_{c}"
        for c in DISTINCT_FLOWS
    ),
    "pair_values": ", ".join(f"('{c}', w.mask_{c}, w.negative_{c})" for c in DISTINCT_FLOWS),
}
assert {d.flow for d in COUNTERS.values() if d.kind == "distinct"} == set(DISTINCT_FLOWS)
# json_build_object takes at most 100 arguments (FUNC_MAX_ARGS)
assert 2 * (len(FLOW_COUNTERS) + len(_STOCKS) + 1) <= 100
PERIOD_COUNTERS = text(PERIOD_COUNTERS_SQL.format(spans=f"spans AS ({SPANS_SELECT}),\n", **_FILL))
"""The own counters (its facts only) of every unit in `:mem` for every period in one statement:
flows summed over each period's months (a month bit mask per period), dossier stocks at each
period's stock instant from one pass over those units' facts (each open dossier is a span of
instant indexes, by `width_bucket`), procedure stocks and distinct pairs at the instant."""

SPANS_TABLE = text(f"CREATE TEMP TABLE period_spans ON COMMIT DROP AS {SPANS_SELECT}")
PERIOD_COUNTERS_FROM_SPANS_TABLE = text(
    PERIOD_COUNTERS_SQL.format(
        spans="spans AS (SELECT unit_id, lo, hi, hw, n FROM period_spans\n"
        "    WHERE unit_id = ANY(CAST(:mem AS text[]))),\n",
        **_FILL,
    )
)
"""`PERIOD_COUNTERS` reading the stock spans from a `period_spans` temporary table: built first
by `SPANS_TABLE` (a plain `CREATE TABLE AS`, so PostgreSQL may scan the facts with parallel
workers, which it does not do for a CTE of a big statement) when many members are computed at
once, or by the caller from a scan it makes anyway (the rebuild's). That scan over every dossier
open at some instant is most of the statement's time."""
SPANS_TABLE_MIN_MEMBERS = 20

READ_OWN = text("""
SELECT unit_id, period, at, counters FROM scoring.own_counters
WHERE unit_id = ANY(CAST(:u AS text[])) AND period = ANY(CAST(:p AS text[]))
""")

WRITE_OWN = text("""
INSERT INTO scoring.own_counters AS o (unit_id, period, at, counters)
SELECT unit_id, period, at, counters
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
    AS r(unit_id text, period text, at timestamptz, counters jsonb)
ON CONFLICT (unit_id, period) DO UPDATE
SET at = excluded.at, counters = excluded.counters, computed_at = now()
""")


def stock_instant(period: Period, as_of: datetime) -> datetime:
    return min(period.end, as_of)


def stock_instants(periods: Iterable[Period], as_of: datetime) -> list[datetime]:
    """The distinct stock instants of `periods`, in order (a span's indexes refer to these)."""
    return sorted({stock_instant(p, as_of) for p in periods})


def _cached_valid(period: Period, cached_at: datetime, as_of: datetime) -> bool:
    """A member's stored own counters of a period still hold (its facts did not change) when
    they were read at the period's stock instant, or both readings fall within the running
    period (time alone moves a running period's stocks only as deadlines pass; units with open
    dossiers are re-queued by the worker every hour)."""
    at = stock_instant(period, as_of)
    if cached_at == at:
        return True
    return at == as_of and period.start <= cached_at < period.end


async def period_counters_many(
    session: AsyncSession,
    units: Sequence[str],
    periods: Sequence[Period],
    as_of: datetime,
    *,
    changed: Collection[str] | None = None,
    spans_instants: Sequence[datetime] | None = None,
    scored_only: bool = False,
) -> dict[str, dict[str, dict[str, float]]]:
    """{period id: {unit: {counter: value}}} for every unit in `units` and every period (absent
    counters are 0, zero counters left out): the (agg, member) closure, the members' own
    counters, summed per unit. Own counters are computed in one statement for every member when
    `changed` is None, else only for the members in `changed` and those without valid stored
    ones; the others are read from `own_counters`. Computed ones are stored.
    `spans_instants`: the caller has built `period_spans` over these stock instants (which
    include every period's) for every member it may compute.
    `scored_only`: leave out the (unit, period) pairs that get no score (`domain.validity`: an
    abolished unit after its end, a unit before its creation with no member existing then);
    the members' own counters are still computed, so their successors' sums lose nothing."""
    if not units or not periods:
        return {p.id: {u: {} for u in units} for p in periods}
    months = sorted({m for p in periods for m in p.months})
    if len(months) > 63:
        raise ValueError("at most 63 distinct months per call")
    index = {m: i for i, m in enumerate(months)}
    instants = stock_instants(periods, as_of)
    if spans_instants is not None:
        if not set(instants) <= set(spans_instants):
            raise ValueError("period_spans lacks some of the periods' stock instants")
        instants = sorted(spans_instants)
    k_of = {t: i + 1 for i, t in enumerate(instants)}
    spec = [
        {
            "pid": p.id,
            "mask": sum(1 << index[m] for m in p.months),
            "k": k_of[stock_instant(p, as_of)],
            "at": stock_instant(p, as_of).isoformat(),
        }
        for p in periods
    ]
    closure = (await session.execute(MEMBERS_WITH_VALIDITY, {"units": list(units)})).all()
    # {(unit, period id)} that get a score: every pair unless `scored_only`
    keep: dict[str, set[str]] = {p.id: set(units) for p in periods}
    if scored_only:
        keep = _scored_pairs(units, periods, closure)
        kept = set().union(*keep.values())
        # a unit scored in none of the periods needs no members of its own (they are computed
        # as members of the units that are scored: its successors, its valid ancestors)
        closure = [r for r in closure if r[0] in kept]
    pairs = [(agg, member, weight) for agg, member, weight, _, _ in closure]
    members = sorted({m for _, m, _ in pairs})
    own: dict[tuple[str, str], dict[str, float]] = {}
    if changed is None:
        compute = set(members)
    else:
        by_id = {p.id: p for p in periods}
        cached = await session.execute(READ_OWN, {"u": members, "p": list(by_id)})
        for m, pid, at, counters in cached.all():
            if _cached_valid(by_id[pid], at, as_of):
                own[(m, pid)] = counters
        compute = set(changed) & set(members)
        compute |= {m for m in members for p in periods if (m, p.id) not in own}
    if compute:
        params = {
            "mem": sorted(compute),
            "periods": json.dumps(spec),
            "months": months,
            "instants": instants,
            "n": len(instants),
            "first_at": instants[0],
            "last_at": instants[-1],
        }
        statement = PERIOD_COUNTERS
        if spans_instants is not None:
            statement = PERIOD_COUNTERS_FROM_SPANS_TABLE
        elif len(compute) >= SPANS_TABLE_MIN_MEMBERS:
            await session.execute(text("DROP TABLE IF EXISTS pg_temp.period_spans"))
            await session.execute(SPANS_TABLE, params)
            statement = PERIOD_COUNTERS_FROM_SPANS_TABLE
        rows = await session.execute(statement, params)
        fresh: dict[tuple[str, str], dict[str, float]] = {
            (m, p.id): {} for m in compute for p in periods
        }
        for m, pid, counters, manual in rows.all():
            own_values = fresh[(m, pid)] = json.loads(counters) if counters else {}
            for counter, value in json.loads(manual).items() if manual else ():
                total = own_values.get(counter, 0.0) + value
                if total:
                    own_values[counter] = total
                else:
                    own_values.pop(counter, None)
        own.update(fresh)
        at_of = {p.id: stock_instant(p, as_of).isoformat() for p in periods}
        await session.execute(
            WRITE_OWN,
            {
                "rows": json.dumps(
                    [
                        {"unit_id": m, "period": pid, "at": at_of[pid], "counters": c}
                        for (m, pid), c in sorted(fresh.items())
                    ]
                )
            },
        )
    # {agg: [(member, weight)]}, then per period the members' own counters summed into each
    # aggregate: ~2,300 pairs × 29 periods × ~40 counters for a province, so the loop is kept
    # lean (period ids computed once, a weight of 1 not multiplied)
    by_agg: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for agg, member, weight in pairs:
        by_agg[agg].append((member, weight))
    derived = [d for d in COUNTERS.values() if d.kind == "derived"]
    result: dict[str, dict[str, dict[str, float]]] = {}
    for p in periods:
        pid = p.id
        by_unit = result[pid] = {}
        scored_here = keep[pid]
        for u in units:
            if u not in scored_here:
                continue
            acc: defaultdict[str, float] = defaultdict(float)
            for member, weight in by_agg.get(u, ()):
                values = own.get((member, pid))
                if not values:
                    continue
                if weight == 1.0:
                    for counter, value in values.items():
                        acc[counter] += value
                else:
                    # a predecessor split between successors counts for its share (lineage weight)
                    for counter, value in values.items():
                        acc[counter] += value * weight
            get = acc.get
            for d in derived:
                acc[d.name] = derived_value(d, get)
            by_unit[u] = {k: v for k, v in sorted(acc.items()) if v != 0}
    return result


MEMBERS_WITH_VALIDITY = text(
    MEMBERS_CTE
    + """
SELECT m.agg, m.member, m.weight, u.valid_from, u.valid_to
FROM members m JOIN scoring.units u ON u.id = m.member
ORDER BY m.agg, m.member
"""
)
"""The (agg, member, weight) closure with each member's validity (an agg is its own member):
what `domain.validity.scored` decides by, in the statement that is read anyway."""


def _scored_pairs(
    units: Sequence[str],
    periods: Sequence[Period],
    closure: Sequence[Any],
) -> dict[str, set[str]]:
    """{period id: units scored in it}: `domain.validity.scored` over the closure's validity.
    A unit outside the registry (no validity known) is scored, as before validity was read."""
    own: dict[str, Validity] = {}
    of_members: defaultdict[str, list[Validity]] = defaultdict(list)
    for agg, member, _, valid_from, valid_to in closure:
        of_members[agg].append((valid_from, valid_to))
        if member == agg:
            own[agg] = (valid_from, valid_to)
    return {
        p.id: {u for u in units if u not in own or scored(own[u], of_members[u], p)}
        for p in periods
    }


async def period_counters(
    session: AsyncSession, units: Sequence[str], period: Period, as_of: datetime
) -> dict[str, dict[str, float]]:
    """{unit: {counter: value}} for every unit in `units` (absent counters are 0)."""
    return (await period_counters_many(session, units, [period], as_of))[period.id]
