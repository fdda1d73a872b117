"""Shortfall breakdowns: the (procedure, unit, count) rows behind an indicator's lost points —
what a scorecard's explanation and an alert's "Nguyên nhân chính" are made of.

Many breakdowns are read together, in one statement per kind of breakdown: a rebuild of a year
that raises an alert for every weak unit-period asks for hundreds (1,516 alerts in the bench's
P21 year), and one statement each (the members' closure, then their leaf rows) cost ~80 ms
apiece — a minute of the rebuild. Batched, each member's leaf rows are joined once per
statement, whatever the number of periods asking for them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.facts import COUNTERS, FLOW_COUNTERS
from services.scoring.domain.periods import Period
from services.scoring.domain.profile import Indicator
from services.scoring.store.registry import MEMBERS_CTE

Row = tuple[str, str, float]
"""(procedure, unit, count)"""


@dataclass(frozen=True)
class ShortfallQuery:
    """One indicator's shortfall for one unit and period, read at `as_of` (stocks and
    procedure lists at the period's stock instant)."""

    unit: str
    period: Period
    as_of: datetime
    numerator: str
    denominator: str
    shortfall_counter: str | None = None

    @classmethod
    def of(cls, indicator: Indicator, unit: str, period: Period, as_of: datetime) -> ShortfallQuery:
        return cls(unit, period, as_of, indicator.numerator, indicator.denominator,
                   indicator.shortfall_counter)  # fmt: skip

    @property
    def at(self) -> datetime:
        return min(self.period.end, self.as_of)


Kind = Literal["not_online", "online_without_dossiers", "late", "flows"]


def _plain(counter: str) -> str:
    """A derived counter that is just another counter (766@2's `sync_due`, `online_base`: the
    portal's bases, ours `received`) reads as that counter."""
    d = COUNTERS[counter]
    if d.kind == "derived" and len(d.terms) == 1 and not d.terms[0].startswith("-"):
        return d.terms[0]
    return counter


def kind_of(q: ShortfallQuery) -> tuple[Kind, str, str] | None:
    """How `q`'s shortfall is broken down, with its (plain) numerator and denominator: procedure
    lists by TTHC, the late-dossier counter by finished-late flows plus open overdue dossiers,
    a flow share by denominator − numerator. None: a stock- or distinct-based indicator (no
    breakdown)."""
    num, den = _plain(q.numerator), _plain(q.denominator)
    if (num, den) == ("proc_online", "proc_total"):
        return "not_online", num, den
    if (num, den) == ("proc_online_with_dossiers", "proc_online"):
        return "online_without_dossiers", num, den
    if q.shortfall_counter == "late_total" or num == "on_time_or_within":
        return "late", num, den
    if COUNTERS[num].kind == "flow" and COUNTERS[den].kind == "flow":
        return "flows", num, den
    return None


_REQUESTS = """,
req AS (
    SELECT * FROM unnest(CAST(:i AS int[]), CAST(:unit AS text[]), CAST(:at AS timestamptz[]),
                         CAST(:months AS text[])) AS q(i, unit, at, months)
),
rm AS (
    SELECT q.i, q.at, string_to_array(q.months, ',') AS months, m.member, m.weight
    FROM req q JOIN members m ON m.agg = q.unit
)
"""
"""Each query (`i`) with its unit's aggregation members (`registry.MEMBERS_CTE`), its stock
instant and its months."""


def _flows(counters: Sequence[str]) -> Any:
    """Per query `i` (a distinct unit and set of months here), the flow `counters` summed over its
    months for its members, per (procedure, unit); then per asker `a` (a query of
    `shortfall_breakdowns`) its `plus` counter minus its `minus` counter (none: '') on those
    rows, where positive."""
    if not counters or not set(counters) <= set(FLOW_COUNTERS):
        raise ValueError(f"not flow counters: {counters}")
    sums = ", ".join(f"sum(l.{c} * r.weight)::float8 AS {c}" for c in counters)

    def pick(column: str) -> str:
        whens = " ".join(f"WHEN '{c}' THEN g.{c}" for c in counters)
        return f"CASE a.{column} {whens} ELSE 0 END"

    return text(
        MEMBERS_CTE
        + _REQUESTS
        + f""",
g AS (
    SELECT r.i, l.procedure, l.unit_id, {sums}
    FROM rm r JOIN scoring.leaf_flows l ON l.unit_id = r.member AND l.month = ANY(r.months)
    GROUP BY r.i, l.procedure, l.unit_id
),
ask AS (
    SELECT * FROM unnest(CAST(:a AS int[]), CAST(:of AS int[]), CAST(:plus AS text[]),
                         CAST(:minus AS text[])) AS a(a, i, plus, minus)
)
SELECT a.a, g.procedure, g.unit_id, v.value
FROM ask a JOIN g ON g.i = a.i
CROSS JOIN LATERAL (SELECT {pick("plus")} - {pick("minus")} AS value) AS v
WHERE v.value > 0
"""
    )


_LATE_OPEN = text(
    MEMBERS_CTE
    + _REQUESTS
    + """
SELECT r.i, f.procedure, f.unit_id, sum(r.weight)::float8
FROM rm r JOIN scoring.facts f ON f.kind = 'dossier' AND f.unit_id = r.member
WHERE f.reception_at < r.at AND (f.end_at IS NULL OR f.end_at >= r.at) AND NOT f.paused
  AND (f.late_by_rule OR (f.eff_due_at IS NOT NULL AND r.at > f.eff_due_at))
GROUP BY r.i, f.procedure, f.unit_id
"""
)


def _procedures(condition: str) -> Any:
    """One row per TTHC listed for the query's members at its stock instant that meets
    `condition`."""
    return text(
        MEMBERS_CTE
        + _REQUESTS
        + f"""
SELECT r.i, f.procedure, f.unit_id, 1.0::float8
FROM rm r JOIN scoring.facts f ON f.kind = 'procedure' AND f.unit_id = r.member
WHERE (f.listed_from IS NULL OR f.listed_from < r.at) AND {condition}
"""
    )


_NOT_ONLINE = _procedures("NOT f.is_online")
_ONLINE_WITHOUT_DOSSIERS = _procedures("""f.is_online
  AND NOT EXISTS (
      SELECT 1 FROM scoring.leaf_flows l
      WHERE l.unit_id = f.unit_id AND l.procedure = f.procedure
        AND l.month = ANY(r.months) AND l.received_online > 0)""")


def _params(batch: Sequence[tuple[int, ShortfallQuery]]) -> dict[str, Any]:
    return {
        "units": sorted({q.unit for _, q in batch}),
        "i": [i for i, _ in batch],
        "unit": [q.unit for _, q in batch],
        "at": [q.at for _, q in batch],
        "months": [",".join(q.period.months) for _, q in batch],
    }


async def shortfall_breakdowns(
    session: AsyncSession, queries: Sequence[ShortfallQuery]
) -> list[list[Row]]:
    """The breakdown of each query, in order: for procedure lists one row per TTHC (not offered
    online; online without an online dossier), sorted by unit and TTHC; for flows and late
    dossiers the positive shortfalls, largest first. Stock- and distinct-based indicators get
    no rows. At most four statements: the flows of every query in one, each distinct unit and
    set of months read once."""
    out: list[list[Row]] = [[] for _ in queries]
    lists: defaultdict[str, list[tuple[int, ShortfallQuery]]] = defaultdict(list)
    flows: list[tuple[int, ShortfallQuery, str, str]] = []  # (asker, query, plus, minus)
    for i, q in enumerate(queries):
        k = kind_of(q)
        if k is None:
            continue
        kind, num, den = k
        if kind == "flows":
            flows.append((i, q, den, num))
        elif kind == "late":  # finished late, plus open and overdue at the stock instant
            flows.append((i, q, "finished_late", ""))
            lists["late_open"].append((i, q))
        else:
            lists[kind].append((i, q))
    for kind, stmt in (("not_online", _NOT_ONLINE),
                       ("online_without_dossiers", _ONLINE_WITHOUT_DOSSIERS)):  # fmt: skip
        if lists[kind]:
            for i, proc, unit, v in (await session.execute(stmt, _params(lists[kind]))).all():
                out[i].append((proc, unit, v))
            for i, _ in lists[kind]:
                out[i].sort(key=lambda r: (r[1], r[0]))
    acc: defaultdict[int, defaultdict[tuple[str, str], float]] = defaultdict(
        lambda: defaultdict(float)
    )
    if flows:
        # the leaf rows of each distinct unit and months are read once, with every counter any
        # of its indicators needs: a unit's indicators share their months, and so do periods
        # over the same months (a closed year and its December year-to-date)
        def key(q: ShortfallQuery) -> tuple[str, tuple[str, ...]]:
            return q.unit, tuple(q.period.months)

        pairs: dict[tuple[str, tuple[str, ...]], int] = {}
        distinct: list[tuple[int, ShortfallQuery]] = []
        for _, q, _, _ in flows:
            if key(q) not in pairs:
                pairs[key(q)] = len(pairs)
                distinct.append((pairs[key(q)], q))
        names = sorted({c for _, _, plus, minus in flows for c in (plus, minus) if c})
        params = {
            **_params(distinct),
            "a": [i for i, _, _, _ in flows],
            "of": [pairs[key(q)] for _, q, _, _ in flows],
            "plus": [plus for _, _, plus, _ in flows],
            "minus": [minus for _, _, _, minus in flows],
        }
        for i, proc, unit, v in (await session.execute(_flows(names), params)).all():
            acc[i][(proc, unit)] += v
    if lists["late_open"]:
        late = await session.execute(_LATE_OPEN, _params(lists["late_open"]))
        for i, proc, unit, v in late.all():
            acc[i][(proc, unit)] += v
    for i, by_pair in acc.items():
        out[i] = sorted(
            ((p, u, v) for (p, u), v in by_pair.items() if v > 0), key=lambda r: (-r[2], r[0])
        )
    return out


async def shortfall_breakdown(
    session: AsyncSession,
    unit: str,
    period: Period,
    as_of: datetime,
    numerator: str,
    denominator: str,
    shortfall_counter: str | None,
) -> list[Row]:
    """One query's breakdown (`shortfall_breakdowns`)."""
    q = ShortfallQuery(unit, period, as_of, numerator, denominator, shortfall_counter)
    return (await shortfall_breakdowns(session, [q]))[0]
