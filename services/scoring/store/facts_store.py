"""Facts from `ingest.dossiers`, upserted set-based, and the leaf counters they maintain.

Per event batch: one `INSERT … SELECT FROM jsonb_to_recordset … ON CONFLICT DO UPDATE WHERE newer`
that also returns the previous version of each row it changed; the counter delta (new
contributions − old contributions, computed by the pure rules of `domain.facts`) is applied with
one `INSERT … ON CONFLICT DO UPDATE SET value = value + delta`, and the touched (unit, month) pairs
are queued as stale with one more statement. A replayed or older record changes no row, so it
changes no counter.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.facts import (
    DEFAULT_ON_TIME,
    FLOW_COUNTERS,
    Contribution,
    OnTimeRule,
    dossier_flows,
    effective_due,
    end_instant,
    late_by_rule,
    petition_flows,
    procedure_flows,
    reception_instant,
)
from services.scoring.domain.periods import VN_TZ, month_of
from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord
from shared.tracing import current_traceparent

Record = DossierRecord | ProcedureRecord | PetitionRecord
MAX_STALE_MONTHS = 24


def _iso(x: datetime | None) -> str | None:
    return x.isoformat() if x is not None else None


def fact_row(r: Record, rule: OnTimeRule = DEFAULT_ON_TIME) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source_id": r.source_id,
        "unit_id": r.unit_id,
        "source_updated_at": r.source_updated_at.isoformat(),
        "doc": r.model_dump(mode="json"),
        "reception_at": None, "end_at": None, "eff_due_at": None, "late_by_rule": False,
        "paused": False, "listed_from": None, "is_online": False, "has_fee": False,
    }  # fmt: skip
    if isinstance(r, DossierRecord):
        end = end_instant(r, rule)
        base.update(
            kind="dossier",
            code=r.code,
            procedure=r.procedure_code,
            reception_at=_iso(reception_instant(r)),
            end_at=_iso(end),
            eff_due_at=_iso(effective_due(r, rule)),
            late_by_rule=late_by_rule(r, rule),
            paused=end is None and r.status in rule.paused_statuses,
            has_fee=r.has_fee,
        )
    elif isinstance(r, ProcedureRecord):
        listed = (
            datetime.combine(r.published_on, time(0), VN_TZ) if r.published_on is not None else None
        )
        base.update(
            kind="procedure",
            code=f"{r.unit_id}|{r.code}",  # one MaTTHC is resolved by many units
            procedure=r.code,
            listed_from=_iso(listed),
            is_online=r.online_level != "none",
            has_fee=r.has_fee,
        )
    else:
        base.update(kind="petition", code=r.code, procedure="")
    return base


def parse_doc(kind: str, doc: dict[str, Any]) -> Record:
    if kind == "dossier":
        return DossierRecord.model_validate(doc)
    if kind == "procedure":
        return ProcedureRecord.model_validate(doc)
    return PetitionRecord.model_validate(doc)


def contributions(r: Record, rule: OnTimeRule = DEFAULT_ON_TIME) -> list[Contribution]:
    if isinstance(r, DossierRecord):
        return dossier_flows(r, rule)
    if isinstance(r, ProcedureRecord):
        return procedure_flows(r)
    return petition_flows(r)


def _months_between(a: str, b: str) -> list[str]:
    """Month ids from `a` to `b` inclusive, at most the last MAX_STALE_MONTHS of them (older
    periods are refreshed by a rebuild, not by the stale queue)."""
    y, m = int(b[:4]), int(b[4:])
    out: list[str] = []
    while f"{y:04d}{m:02d}" >= a and len(out) < MAX_STALE_MONTHS:
        out.append(f"{y:04d}{m:02d}")
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    return out[::-1]


def stale_months(r: Record, now: datetime, rule: OnTimeRule = DEFAULT_ON_TIME) -> set[str]:
    """Months whose figures a change of `r` can move: its flow months, and for a dossier every
    month-end it was (or is) open at; for a procedure, every month of the current year (its list
    state has no history, so stocks read it as of now)."""
    out = {c.month for c in contributions(r, rule)}
    now_m = month_of(now)
    if isinstance(r, DossierRecord):
        rec = reception_instant(r)
        if rec is not None:
            end = end_instant(r, rule)
            out.update(_months_between(month_of(rec), month_of(end) if end else now_m))
    elif isinstance(r, ProcedureRecord):
        out.update(_months_between(now_m[:4] + "01", now_m))
    return out


UPSERT = text("""
WITH incoming AS (
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
        kind text, source_id text, code text, unit_id text, procedure text,
        source_updated_at timestamptz, reception_at timestamptz, end_at timestamptz,
        eff_due_at timestamptz, late_by_rule boolean, paused boolean, listed_from timestamptz,
        is_online boolean, has_fee boolean, doc jsonb)
),
old AS (
    SELECT f.kind, f.source_id, f.code, f.doc
    FROM scoring.facts f JOIN incoming i USING (kind, source_id, code)
),
up AS (
    INSERT INTO scoring.facts AS f (kind, source_id, code, unit_id, procedure, source_updated_at,
        reception_at, end_at, eff_due_at, late_by_rule, paused, listed_from, is_online, has_fee,
        doc)
    SELECT kind, source_id, code, unit_id, procedure, source_updated_at, reception_at, end_at,
        eff_due_at, late_by_rule, paused, listed_from, is_online, has_fee, doc
    FROM incoming
    ON CONFLICT (kind, source_id, code) DO UPDATE SET
        unit_id = excluded.unit_id, procedure = excluded.procedure,
        source_updated_at = excluded.source_updated_at, reception_at = excluded.reception_at,
        end_at = excluded.end_at, eff_due_at = excluded.eff_due_at,
        late_by_rule = excluded.late_by_rule, paused = excluded.paused,
        listed_from = excluded.listed_from, is_online = excluded.is_online,
        has_fee = excluded.has_fee, doc = excluded.doc, stored_at = now()
    WHERE excluded.source_updated_at > f.source_updated_at
    RETURNING f.kind, f.source_id, f.code
)
SELECT up.kind, up.source_id, up.code, old.doc AS old_doc
FROM up LEFT JOIN old USING (kind, source_id, code)
""")

LOCK_KEYS = text("""
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
FROM (SELECT DISTINCT k FROM unnest(CAST(:keys AS text[])) AS k ORDER BY k) AS keys
""")
"""Serialise writers of the same facts (in key order, so no deadlock) for the transaction: the
upsert's statement snapshot, taken after the lock, then sees every committed version, so the
previous version it subtracts is exact even when a fact is written from two partitions.
(A `FOR UPDATE` inside the upsert's CTE would skip rows the same statement updates.)"""

APPLY_DELTA = text(
    f"""
INSERT INTO scoring.leaf_flows AS l (unit_id, procedure, month, {", ".join(FLOW_COUNTERS)})
SELECT unit_id, procedure, month,
    {", ".join(f"coalesce(sum(value) FILTER (WHERE counter = '{c}'), 0)" for c in FLOW_COUNTERS)}
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
     AS r(unit_id text, procedure text, month text, counter text, value bigint)
GROUP BY unit_id, procedure, month
ON CONFLICT (unit_id, month, procedure) DO UPDATE
SET {", ".join(f"{c} = l.{c} + excluded.{c}" for c in FLOW_COUNTERS)}
"""
)
"""Add (unit, procedure, month, counter) deltas to the wide leaf rows, one row per key."""

ENQUEUE_STALE = text("""
INSERT INTO scoring.stale (unit_id, month, traceparent)
SELECT unit_id, month, CAST(:traceparent AS text)
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(unit_id text, month text)
ON CONFLICT (unit_id, month) DO UPDATE SET enqueued_at = now(), priority = 0,
    traceparent = coalesce(scoring.stale.traceparent, excluded.traceparent)
""")
"""Queue (unit, month) pairs at the events' priority (ahead of the periodic catch-up, even when
the catch-up queued the pair first); a pair keeps the trace of the first event that queued it."""


async def enqueue_stale(session: AsyncSession, pairs: Iterable[tuple[str, str]]) -> None:
    rows = [{"unit_id": u, "month": m} for u, m in sorted(set(pairs))]
    if rows:
        await session.execute(
            ENQUEUE_STALE, {"rows": json.dumps(rows), "traceparent": current_traceparent()}
        )


async def add_leaf_deltas(
    session: AsyncSession, deltas: dict[tuple[str, str, str, str], int]
) -> None:
    rows = [
        {"unit_id": u, "procedure": p, "month": m, "counter": c, "value": v}
        for (u, p, m, c), v in sorted(deltas.items())
        if v != 0
    ]
    if rows:
        await session.execute(APPLY_DELTA, {"rows": json.dumps(rows)})


async def upsert_facts(
    session: AsyncSession,
    records: Sequence[Record],
    *,
    rule: OnTimeRule = DEFAULT_ON_TIME,
    now: datetime | None = None,
) -> int:
    """Store a batch of facts; returns how many rows changed (newer versions or new facts)."""
    if not records:
        return 0
    now = now or datetime.now(UTC)
    # the newest version of each fact within the batch (one row per key per statement)
    newest: dict[tuple[str, str, str], tuple[Record, dict[str, Any]]] = {}
    for r in records:
        row = fact_row(r, rule)
        key = (row["kind"], row["source_id"], row["code"])
        if key not in newest or r.source_updated_at > newest[key][0].source_updated_at:
            newest[key] = (r, row)
    await session.execute(LOCK_KEYS, {"keys": ["|".join(k) for k in newest]})
    result = await session.execute(
        UPSERT, {"rows": json.dumps([row for _, row in newest.values()])}
    )
    changed = result.mappings().all()
    deltas: dict[tuple[str, str, str, str], int] = defaultdict(int)
    stale: set[tuple[str, str]] = set()
    for ch in changed:
        new, _ = newest[(ch["kind"], ch["source_id"], ch["code"])]
        for c in contributions(new, rule):
            deltas[(c.unit_id, c.procedure, c.month, c.counter)] += c.value
        stale.update((new.unit_id, m) for m in stale_months(new, now, rule))
        if ch["old_doc"] is not None:
            old = parse_doc(ch["kind"], ch["old_doc"])
            for c in contributions(old, rule):
                deltas[(c.unit_id, c.procedure, c.month, c.counter)] -= c.value
            stale.update((old.unit_id, m) for m in stale_months(old, now, rule))
    await add_leaf_deltas(session, deltas)
    await enqueue_stale(session, stale)
    return len(changed)
