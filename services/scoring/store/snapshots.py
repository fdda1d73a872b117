"""Immutable snapshot versions, rankings among peers, alerts and official scores."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import Collection, Sequence
from datetime import date, datetime
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.domain.alerts import OpenAlert, OpenKey
from services.scoring.domain.engine import Scorecard, indicator_constants, score
from services.scoring.domain.periods import Period
from services.scoring.domain.profile import Profile
from shared.gc_pause import gc_paused

_DOC = msgspec.json.Encoder(order="sorted")


class StoredIndicator(msgspec.Struct, omit_defaults=True):
    """What a snapshot stores of an indicator's result: the figures that vary between
    unit-periods. The rest of `IndicatorResult` (code, group, rule, max, external code,
    informational, lost) is the profile version's, the same in every snapshot of it, and is
    taken from the profile on reading (`engine.card_from_doc`); storing it repeated it in every
    row, half of each document (scoring_0018)."""

    numerator: float
    denominator: float
    ratio: float | None
    points: float | None
    empty: bool
    terms: dict[str, float | None] = {}
    value: float | None = None


def encode_doc(card: Scorecard) -> bytes:
    """A scorecard's stored document as canonical JSON (keys sorted at every level; groups
    encode as their fields, indicators as `StoredIndicator`): what a snapshot row holds and its
    digest is taken of, so equal scorecards of a profile version give equal digests. msgspec
    encodes it in C, ~10× faster than building dicts for `json.dumps(sort_keys=True)`."""
    return _DOC.encode(
        {
            "total": card.total,
            "max_total": card.max_total,
            "applicable_max": card.applicable_max,
            "groups": card.groups,
            "indicators": {
                k: StoredIndicator(
                    i.numerator, i.denominator, i.ratio, i.points, i.empty, i.terms, i.value
                )
                for k, i in card.indicators.items()
            },
            "counters": card.counters,
        }
    )


def encode_points(card: Scorecard) -> bytes:
    """A snapshot's `points` column (scoring_0010): each group's and indicator's points, what a
    ranking by one of them reads, without the documents."""
    return _DOC.encode(
        {
            "groups": {k: g.points for k, g in card.groups.items()},
            "indicators": {k: i.points for k, i in card.indicators.items()},
        }
    )


RECORD_CONSTANTS = text("""
INSERT INTO scoring.snapshot_indicator_constants (profile, indicator, constants)
SELECT :profile, i, CAST(c AS jsonb) FROM unnest(CAST(:i AS text[]), CAST(:c AS text[])) AS x(i, c)
ON CONFLICT DO NOTHING
""")
_recorded: set[tuple[str, str]] = set()


async def record_constants(session: AsyncSession, profile: Profile) -> None:
    """Keep what `profile` fixes of its indicators beside the snapshots that leave it out
    (scoring_0018), once per database and profile version in a process: what a downgrade puts
    back, and what a reader in plain SQL can join on."""
    key = (str(session.get_bind().engine.url), profile.key)
    if key in _recorded:
        return
    fixed = indicator_constants(profile)
    await session.execute(
        RECORD_CONSTANTS,
        {"profile": profile.key, "i": list(fixed), "c": [json.dumps(c) for c in fixed.values()]},
    )
    _recorded.add(key)


def digest(doc_json: bytes) -> str:
    return hashlib.sha256(doc_json).hexdigest()


LATEST_MANY = text("""
SELECT l.period, l.unit_id, l.version, l.digest, CAST(s.counters AS text) AS counters
FROM (
    SELECT DISTINCT ON (period, unit_id) period, unit_id, version, digest
    FROM scoring.snapshots
    WHERE period = ANY(CAST(:periods AS text[])) AND profile = :profile
      AND unit_id = ANY(CAST(:units AS text[]))
    ORDER BY period, unit_id, version DESC
) l
-- the latest versions' counters only, not those of every version the DISTINCT ON reads
JOIN scoring.snapshots s ON s.unit_id = l.unit_id AND s.period = l.period
     AND s.profile = :profile AND s.version = l.version
""")


_COUNTERS = msgspec.json.Decoder(dict[str, float]).decode
"""A stored `counters` document, as the engine's counters (floats: 3 == 3.0 either way)."""

Cards = dict[str, dict[str, Scorecard]]
Written = dict[str, list[tuple[str, int, float | None]]]
CHUNK = 500
"""Unit-periods per insert: one chunk is scored while the previous one is being inserted."""


async def score_and_write(
    session: AsyncSession,
    profile: Profile,
    counters: dict[str, dict[str, dict[str, float]]],
    *,
    needs_cards: Collection[str] | None = None,
) -> tuple[Cards, Written]:
    """Score every (period, unit) of `counters` ({period id: {unit: counters}}) and write a new
    snapshot version for each whose scorecard differs from its latest version. Returns the
    cards, and {period id: [(unit, version, total)]} of the versions written, by unit.

    `needs_cards`: the units whose cards the caller needs (None: every unit's). For the other
    units a unit-period whose counters equal those stored in its latest version is neither
    scored nor written again, and has no card in the result: a scorecard is a function of the
    profile (the same key, the same version) and the counters alone, so it would be the same
    card with the same digest. That is a re-run's, or a refresh's, unchanged majority.

    Scoring is CPU-bound Python and the insert is PostgreSQL's work, so they overlap: each
    chunk is scored (and encoded) in a worker thread while the previous chunk's insert runs on
    the event loop; the session is used by one statement at a time."""
    units = sorted({u for by_unit in counters.values() for u in by_unit})
    cards: Cards = {pid: {} for pid in counters}
    written: Written = {}
    if not units:
        return cards, written
    latest: dict[tuple[str, str], tuple[int, str]] = {}
    stored: dict[tuple[str, str], str] = {}
    for r in (
        await session.execute(
            LATEST_MANY, {"periods": list(counters), "profile": profile.key, "units": units}
        )
    ).mappings():
        key = (r["period"], r["unit_id"])
        latest[key] = (r["version"], r["digest"])
        if needs_cards is not None and r["unit_id"] not in needs_cards:
            stored[key] = r["counters"]
    work = [(pid, u, c) for pid, by_unit in counters.items() for u, c in sorted(by_unit.items())]

    def prepare(items: list[tuple[str, str, dict[str, float]]]) -> dict[str, list[Any]]:
        cols: dict[str, list[Any]] = {
            k: [] for k in ("u", "p", "v", "d", "doc", "t", "m", "a", "pts")
        }
        with gc_paused():  # every card stays alive until the recompute ends: see gc_paused
            for pid, unit, c in items:
                kept = stored.get((pid, unit))
                if kept is not None and _COUNTERS(kept) == c:
                    continue
                card = cards[pid][unit] = score(profile, c)
                doc = encode_doc(card)
                d = digest(doc)
                version, prev = latest.get((pid, unit), (0, None))
                if prev == d:
                    continue
                for k, v in (("u", unit), ("p", pid), ("v", version + 1), ("d", d),
                             ("doc", doc.decode()), ("t", card.total), ("m", card.max_total),
                             ("a", card.applicable_max),
                             ("pts", encode_points(card).decode())):  # fmt: skip
                    cols[k].append(v)
        return cols

    async def insert(cols: dict[str, list[Any]]) -> list[Any]:
        res = await session.execute(INSERT_SNAPSHOTS_MANY, {**cols, "profile": profile.key})
        return list(res.all())

    await record_constants(session, profile)
    rows: list[Any] = []
    pending: asyncio.Task[list[Any]] | None = None
    try:
        for i in range(0, len(work), CHUNK):
            cols = await asyncio.to_thread(prepare, work[i : i + CHUNK])
            if pending is not None:
                rows += await pending
                pending = None
            if cols["u"]:
                pending = asyncio.create_task(insert(cols))
        if pending is not None:
            rows += await pending
            pending = None
    finally:
        if pending is not None:  # a failed chunk: let the statement in flight finish first
            with contextlib.suppress(Exception):
                await pending
    for p, u, v, t in sorted(rows):
        written.setdefault(p, []).append((u, v, t))
    return cards, written


DROP_UNSCORED = text("""
DELETE FROM scoring.snapshots s
USING unnest(CAST(:u AS text[]), CAST(:p AS text[])) AS x(unit_id, period)
WHERE s.unit_id = x.unit_id AND s.period = x.period AND s.profile = :profile
""")


async def drop_unscored(
    session: AsyncSession, profile: str, pairs: Sequence[tuple[str, str]]
) -> None:
    """Remove the snapshots of (unit, period) pairs that get no score (`domain.validity`),
    written before that rule: they would otherwise stand, never updated, as the unit's score
    for a period it did not exist in. One statement; nothing to remove after the first run."""
    if pairs:
        await session.execute(
            DROP_UNSCORED,
            {"u": [u for u, _ in pairs], "p": [p for _, p in pairs], "profile": profile},
        )


INSERT_SNAPSHOTS_MANY = text("""
INSERT INTO scoring.snapshots (unit_id, period, profile, version, total, max_total,
    applicable_max, groups, indicators, counters, digest, points)
SELECT r.unit_id, r.period, :profile, r.version, r.total, r.max_total, r.applicable_max,
    j.doc -> 'groups', j.doc -> 'indicators', j.doc -> 'counters', r.digest,
    CAST(r.points AS jsonb)
FROM unnest(CAST(:u AS text[]), CAST(:p AS text[]), CAST(:v AS int[]), CAST(:d AS text[]),
            CAST(:doc AS text[]), CAST(:t AS float8[]), CAST(:m AS float8[]),
            CAST(:a AS float8[]), CAST(:pts AS text[]))
    AS r(unit_id, period, version, digest, doc, total, max_total, applicable_max, points)
-- OFFSET 0 keeps the subquery, so each document is parsed once, not once per `->`
CROSS JOIN LATERAL (SELECT CAST(r.doc AS jsonb) AS doc OFFSET 0) AS j
ON CONFLICT DO NOTHING
RETURNING period, unit_id, version, total
""")
"""Columns as arrays: each document (as serialised for its digest) is parsed once, on its own,
rather than one array of every row parsed and then taken apart."""


async def get_snapshot(
    session: AsyncSession,
    unit: str,
    period: str,
    profile: str,
    *,
    as_of: datetime | None = None,
    version: int | None = None,
) -> dict[str, Any] | None:
    """The latest version, the version current at `as_of`, or a given version."""
    row = (await session.execute(
        text("""
        SELECT unit_id, period, profile, version, computed_at, total, max_total, applicable_max,
               groups, indicators, counters
        FROM scoring.snapshots
        WHERE unit_id = :unit AND period = :period AND profile = :profile
          AND (CAST(:as_of AS timestamptz) IS NULL OR computed_at <= :as_of)
          AND (CAST(:version AS int) IS NULL OR version = :version)
        ORDER BY version DESC LIMIT 1
        """),
        {"unit": unit, "period": period, "profile": profile, "as_of": as_of, "version": version},
    )).mappings().first()  # fmt: skip
    return dict(row) if row else None


RANK = text("""
WITH latest AS (
    SELECT DISTINCT ON (unit_id) unit_id, total
    FROM scoring.snapshots WHERE period = :period AND profile = :profile
    ORDER BY unit_id, version DESC
),
classes AS (
    SELECT * FROM jsonb_to_recordset(CAST(:classes AS jsonb)) AS c(level text, kind text,
                                                                   class text)
),
peers AS (
    SELECT l.unit_id, l.total,
           coalesce(
               (SELECT c.class FROM classes c WHERE c.level = u.level AND c.kind = u.kind),
               (SELECT c.class FROM classes c WHERE c.level = u.level AND c.kind = '*'),
               u.level || '|' || u.kind) || '|' ||
           CASE WHEN u.parent_id IS NULL THEN '' ELSE split_part(u.path, '/', 2) END ||
           -- a unit abolished within the period (an old ward in 2025) ranks among the units
           -- abolished with it, not among their successors
           CASE WHEN u.valid_to IS NOT NULL AND u.valid_to < CAST(:end AS date) - 1
                THEN '|đến ' || u.valid_to ELSE '' END AS peer_group
    FROM latest l JOIN scoring.units u ON u.id = l.unit_id
    WHERE u.valid_from < :end AND (u.valid_to IS NULL OR u.valid_to >= :start)
),
ranked AS (
    SELECT unit_id, total, peer_group,
           CASE WHEN total IS NULL THEN NULL
                ELSE rank() OVER (PARTITION BY peer_group ORDER BY total DESC NULLS LAST) END
             AS rank,
           count(*) OVER (PARTITION BY peer_group) AS peers
    FROM peers
)
INSERT INTO scoring.rankings AS k (unit_id, period, profile, peer_group, rank, previous_rank,
                                   peers, total)
SELECT r.unit_id, :period, :profile, r.peer_group, r.rank, p.rank, r.peers, r.total
FROM ranked r
LEFT JOIN scoring.rankings p ON p.unit_id = r.unit_id AND p.period = :previous
     AND p.profile = :profile
ON CONFLICT (unit_id, period, profile) DO UPDATE SET peer_group = excluded.peer_group,
    rank = excluded.rank, previous_rank = excluded.previous_rank, peers = excluded.peers,
    total = excluded.total, computed_at = now()
""")


async def rank_period(
    session: AsyncSession,
    period: Period,
    profile: str,
    peer_classes: Sequence[dict[str, str]] = (),
) -> None:
    """Ranks of every unit of a period among its peers (the same peer class — by default the
    same level and kind — within the same province below province level), with the rank of
    the previous period, in one statement. Equal totals share a rank (1, 2, 2, 4)."""
    await session.execute(
        RANK,
        {
            "classes": json.dumps(list(peer_classes)),
            "period": period.id,
            "profile": profile,
            "previous": period.previous().id,
            "start": period.start_date,
            "end": period.end_date,
        },
    )


async def ranks_many(
    session: AsyncSession, periods: Sequence[str], profile: str, units: Sequence[str]
) -> dict[tuple[str, str], tuple[int | None, int | None]]:
    """{(period, unit): (rank, previous rank)} for many periods in one statement."""
    rows = await session.execute(
        text("""
        SELECT period, unit_id, rank, previous_rank FROM scoring.rankings
        WHERE period = ANY(CAST(:periods AS text[])) AND profile = :profile
          AND unit_id = ANY(CAST(:units AS text[]))
        """),
        {"periods": list(periods), "profile": profile, "units": list(units)},
    )
    return {(p, u): (r, pr) for p, u, r, pr in rows.all()}


async def ranks_of(
    session: AsyncSession, period: str, profile: str, units: Sequence[str]
) -> dict[str, tuple[int | None, int | None]]:
    rows = await session.execute(
        text("""
        SELECT unit_id, rank, previous_rank FROM scoring.rankings
        WHERE period = :period AND profile = :profile AND unit_id = ANY(CAST(:units AS text[]))
        """),
        {"period": period, "profile": profile, "units": list(units)},
    )
    return {u: (r, p) for u, r, p in rows.all()}


async def open_alerts(session: AsyncSession, units: Sequence[str]) -> dict[OpenKey, OpenAlert]:
    """The open alert of every (unit, indicator, period kind) of `units`; where older data has
    several open for one kind, the one of the newest period stands for them."""
    rows = await session.execute(
        text("""
        SELECT DISTINCT ON (unit_id, indicator, period_kind)
               unit_id, indicator, period_kind, alert_id, period
        FROM scoring.alerts
        WHERE status = 'open' AND unit_id = ANY(CAST(:units AS text[]))
        ORDER BY unit_id, indicator, period_kind, period DESC, raised_at DESC
        """),
        {"units": list(units)},
    )
    return {(u, i, k): OpenAlert(a, p) for u, i, k, a, p in rows.all()}


_ALERT_COLUMNS = """alert_id text, rule text, unit_id text, indicator text, period text,
     message text, value float8, threshold float8, title text, title_en text, message_en text,
     period_kind text, in_progress boolean, judged_on date"""

RAISE_MANY = text(f"""
INSERT INTO scoring.alerts AS a (alert_id, rule, unit_id, indicator, period, status, message,
                                 value, threshold, title, title_en, message_en, period_kind,
                                 in_progress, judged_on)
SELECT alert_id, rule, unit_id, indicator, period, 'open', message, value, threshold, title,
       title_en, message_en, period_kind, in_progress, judged_on
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({_ALERT_COLUMNS})
ON CONFLICT (alert_id) DO UPDATE SET status = 'open', message = excluded.message,
    value = excluded.value, threshold = excluded.threshold, raised_at = now(), cleared_at = NULL,
    title = excluded.title, title_en = excluded.title_en, message_en = excluded.message_en,
    in_progress = excluded.in_progress, judged_on = excluded.judged_on, cleared_reason = NULL
WHERE a.status = 'cleared'
RETURNING a.alert_id
""")
"""Raise alerts not open yet; returns the ids that were actually raised (race-proof once)."""

UPDATE_MANY = text(f"""
UPDATE scoring.alerts a SET period = r.period, rule = r.rule, message = r.message,
    value = r.value, threshold = r.threshold, title = r.title, title_en = r.title_en,
    message_en = r.message_en, in_progress = r.in_progress, judged_on = r.judged_on
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({_ALERT_COLUMNS})
WHERE a.alert_id = r.alert_id AND a.status = 'open'
""")
"""An open alert continues in a newer period of its kind: its figures and words follow."""

CLEAR_MANY = text("""
UPDATE scoring.alerts a SET status = 'cleared', cleared_at = now(), value = r.value,
    cleared_reason = r.reason, in_progress = r.in_progress, judged_on = r.judged_on
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
    AS r(alert_id text, value float8, reason text, in_progress boolean, judged_on date)
WHERE a.alert_id = r.alert_id AND a.status = 'open'
RETURNING a.alert_id
""")
CLEARED_REASON = "chỉ số đã đạt"
"""Why an alert is cleared (and the remediation item it raised is closed)."""


# typed: points are floats (an integral JSON number too), as the ranking response declares
_GROUP_POINTS = msgspec.json.Decoder(dict[str, float | None])


async def list_rankings(
    session: AsyncSession,
    period: str,
    profile: str,
    level: str | None,
    under: str | None,
    *,
    group: str | None = None,
    indicator: str | None = None,
    group_docs: bool = True,
) -> list[dict[str, Any]]:
    """The latest snapshot of every unit of a period (of `level`, in the subtree of `under`)
    with its stored rank among peers, ordered by peer group, rank, unit. Each row has
    `group_points` ({group: points}), `value` (the points of `indicator`, else of `group`,
    else the total) and, unless `group_docs` is false, `groups` ({group: {"points": p}}).

    The figures come from the snapshots' short `points` column, not from the documents: no
    `indicators` document (the bulk of a snapshot, stored out of line) is detoasted to rank by
    an indicator, and the group points come as one small JSON object per unit rather than whole
    documents for the driver to `json.loads` (for 3,321 communes that was ~0.4 s of a ~0.6 s
    API request)."""
    rows = await session.execute(
        text("""
        WITH latest AS (
            SELECT DISTINCT ON (unit_id) unit_id, version, total, max_total, applicable_max,
                   computed_at, CAST(points -> 'groups' AS text) AS group_points,
                   CASE WHEN CAST(:indicator AS text) IS NOT NULL
                        THEN CAST(points -> 'indicators' ->> CAST(:indicator AS text) AS float8)
                        WHEN CAST(:group AS text) IS NOT NULL
                        THEN CAST(points -> 'groups' ->> CAST(:group AS text) AS float8)
                        ELSE total END AS value
            FROM scoring.snapshots WHERE period = :period AND profile = :profile
            ORDER BY unit_id, version DESC
        )
        SELECT u.id, u.name, u.level, u.kind, k.peer_group, k.rank, k.previous_rank, k.peers,
               l.total, l.version, l.group_points, l.value, l.max_total, l.applicable_max,
               l.computed_at
        FROM latest l
        JOIN scoring.units u ON u.id = l.unit_id
        LEFT JOIN scoring.rankings k ON k.unit_id = l.unit_id AND k.period = :period
             AND k.profile = :profile
        WHERE (CAST(:level AS text) IS NULL OR u.level = :level)
          AND (CAST(:under AS text) IS NULL OR u.path LIKE (
                SELECT p.path FROM scoring.units p WHERE p.id = :under) || '%')
        ORDER BY k.peer_group, k.rank NULLS LAST, u.id
        """),
        {"period": period, "profile": profile, "level": level, "under": under,
         "group": group, "indicator": indicator},
    )  # fmt: skip
    points_of = _GROUP_POINTS.decode
    out = []
    for r in rows.all():
        (uid, name, lvl, kind, peer_group, rank, prev, peers, total, version, pts, value,
         max_total, applicable_max, computed_at) = r  # fmt: skip
        points = points_of(pts)
        row = {"unit_id": uid, "name": name, "level": lvl, "kind": kind,
               "peer_group": peer_group, "rank": rank, "previous_rank": prev, "peers": peers,
               "total": total, "version": version, "value": value, "group_points": points,
               "max_total": max_total, "applicable_max": applicable_max,
               "not_applicable": sorted(g for g, p in points.items() if p is None),
               "computed_at": computed_at}  # fmt: skip
        if group_docs:
            row["groups"] = {g: {"points": p} for g, p in points.items()}
        out.append(row)
    return out


FRESHNESS = text("""
SELECT (SELECT max(processed_at) FROM scoring.processed_events) AS last_event_at,
       (SELECT count(*) FROM (SELECT 1 FROM scoring.stale LIMIT 10000) s) AS stale_pairs,
       (SELECT min(enqueued_at) FROM scoring.stale) AS oldest_stale_at
""")


async def freshness(session: AsyncSession) -> dict[str, Any]:
    """How fresh the figures are: when the last event was applied (facts in), and whether a
    recomputation is still due (unit-months queued and not yet recomputed)."""
    row = (await session.execute(FRESHNESS)).one()
    return {
        "last_event_at": row.last_event_at,
        "recompute_pending": row.stale_pairs > 0,
        "stale_pairs": row.stale_pairs,
        "oldest_stale_at": row.oldest_stale_at,
    }


async def import_official(
    session: AsyncSession, rows: Sequence[dict[str, Any]], source: str, by: str
) -> int:
    payload = [{**r, "source": source, "imported_by": by} for r in rows]
    if not payload:
        return 0
    await session.execute(
        text("""
        INSERT INTO scoring.official_scores AS o (unit_id, period, profile, item, points, source,
                                                 imported_by, external_code, numerator,
                                                 denominator, ratio, max_points)
        SELECT unit_id, period, profile, item, points, source, imported_by, external_code,
               numerator, denominator, ratio, max_points
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(unit_id text, period text,
             profile text, item text, points float8, source text, imported_by text,
             external_code text, numerator float8, denominator float8, ratio float8,
             max_points float8)
        ON CONFLICT (unit_id, period, profile, item) DO UPDATE SET points = excluded.points,
            source = excluded.source, imported_by = excluded.imported_by, imported_at = now(),
            external_code = excluded.external_code, numerator = excluded.numerator,
            denominator = excluded.denominator, ratio = excluded.ratio,
            max_points = excluded.max_points
        """),
        {"rows": json.dumps(payload)},
    )
    return len(payload)


async def remediation_share(
    session: AsyncSession, units: Sequence[str], today: date
) -> dict[str, dict[str, float | None]]:
    """Share of remediation findings handled (reported or accepted) and handled on time
    (completed on or before the deadline), over items not cancelled, per aggregation unit."""
    from services.scoring.store.registry import MEMBERS_CTE

    rows = await session.execute(
        text(
            MEMBERS_CTE
            + """
        SELECT m.agg,
               count(*) FILTER (WHERE r.status <> 'cancelled') AS items,
               count(*) FILTER (WHERE r.status IN ('reported', 'accepted')) AS handled,
               count(*) FILTER (WHERE r.status IN ('reported', 'accepted')
                                AND (r.deadline IS NULL OR r.completed_on <= r.deadline))
                 AS handled_on_time,
               count(*) FILTER (WHERE r.status IN ('not_started', 'in_progress')
                                AND r.deadline < :today) AS overdue
        FROM members m JOIN scoring.remediation_items r ON r.unit_id = m.member
        GROUP BY m.agg
        """
        ),
        {"units": list(units), "today": today},
    )
    out: dict[str, dict[str, float | None]] = {}
    for r in rows.mappings().all():
        n = r["items"]
        out[r["agg"]] = {
            "items": n,
            "handled": r["handled"],
            "overdue": r["overdue"],
            "handled_share": r["handled"] / n if n else None,
            "handled_on_time_share": r["handled_on_time"] / n if n else None,
        }
    return out


async def inspection_coverage(session: AsyncSession, unit: str, year: int) -> float | None:
    """Share of the agencies under `unit` (valid during `year`) that have at least one finding
    from an inspection conclusion — the PAR condition "inspections cover > 30% of agencies"."""
    from services.scoring.store.registry import MEMBERS_CTE

    row = (await session.execute(
        text(MEMBERS_CTE + """
        SELECT count(*) AS agencies,
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM scoring.remediation_items r
                   WHERE r.unit_id = u.id AND r.origin = 'conclusion')) AS inspected
        FROM members m JOIN scoring.units u ON u.id = m.member
        WHERE m.member <> m.agg
          AND u.valid_from <= make_date(:year, 12, 31)
          AND (u.valid_to IS NULL OR u.valid_to >= make_date(:year, 1, 1))
        """),
        {"units": [unit], "year": year},
    )).mappings().one()  # fmt: skip
    return row["inspected"] / row["agencies"] if row["agencies"] else None
