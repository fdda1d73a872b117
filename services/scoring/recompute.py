"""Recomputation: counters (set-based SQL) → scorecards (pure engine) → snapshot versions,
ranks, alerts and their events through the outbox — all inside the caller's transaction."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.scoring.domain.alerts import (
    TOTAL,
    AlertDecision,
    AlertRule,
    Observation,
    apply_to_open,
    evaluate,
    load_alert_rules,
    may_decide,
)
from services.scoring.domain.explain import BreakdownRow, causes
from services.scoring.domain.periods import VN_TZ, Period, month_of, periods_containing_month
from services.scoring.domain.profile import Profile, load_profile
from services.scoring.metrics import ALERTS, RECOMPUTE_SECONDS, SNAPSHOT_VERSIONS, STALE_QUEUE
from services.scoring.store import snapshots as snap
from services.scoring.store.breakdown import ShortfallQuery, shortfall_breakdowns
from services.scoring.store.counters import period_counters_many
from services.scoring.store.registry import aggregation_targets, procedure_names, unit_names
from shared import tracing
from shared.db import transaction
from shared.events.outbox import Outbox
from shared.events.payloads import AlertCleared, AlertRaised, Payload, SnapshotUpdated
from shared.workers import PeriodicWorker

log = logging.getLogger("cchc.scoring.recompute")


def default_profile() -> Profile:
    return load_profile(os.environ.get("SCORING_PROFILE", "766"))


@dataclass
class Scoring:
    """What a recomputation needs besides the session."""

    outbox: Outbox
    profile: Profile = field(default_factory=default_profile)
    alert_rules: tuple[AlertRule, ...] = field(default_factory=lambda: load_alert_rules().rules)


@dataclass
class RecomputeStats:
    pairs: int = 0
    versions: int = 0
    raised: int = 0
    cleared: int = 0


async def unit_levels(session: AsyncSession, units: Sequence[str]) -> dict[str, str]:
    return {u: lv for u, (lv, _) in (await unit_levels_names(session, units)).items()}


async def unit_levels_names(
    session: AsyncSession, units: Sequence[str]
) -> dict[str, tuple[str, str]]:
    """(level, name) of each unit: what alert rules select by and their messages name."""
    rows = await session.execute(
        text("SELECT id, level, name FROM scoring.units WHERE id = ANY(CAST(:u AS text[]))"),
        {"u": list(units)},
    )
    return {u: (lv, name) for u, lv, name in rows.all()}


async def recompute(
    session: AsyncSession,
    ctx: Scoring,
    units: Sequence[str],
    periods: Sequence[Period],
    as_of: datetime,
    *,
    today: date | None = None,
    changed: Collection[str] | None = None,
    spans_instants: Sequence[datetime] | None = None,
    rescore: bool = False,
) -> RecomputeStats:
    """Recompute `units` for `periods`, batched: counters of every (unit, period) in one
    statement, scorecards in the pure engine, new snapshot versions in one insert, ranks per
    period (in period order, so a period sees its predecessor's ranks), alerts in two
    statements, and the events through the outbox in one insert (per period: its snapshot
    events, then its alert events).

    Alerts are raised only for periods in the rules' watch window on `today`, by default the
    Vietnam date of `as_of` (the callers' `datetime.now()` in production).

    `changed`: the units whose facts changed since their own counters were stored (the stale
    queue's); None recomputes every member's own counters from the facts. `spans_instants`: see
    `period_counters_many`.

    A unit-period whose counters equal those of its latest snapshot is not scored again (the
    same profile version gives the same card) unless alerts may decide on it; `rescore` scores
    every one, for a rebuild after a change of the engine's code under the same profile
    version."""
    stats = RecomputeStats()
    today = today or as_of.astimezone(VN_TZ).date()
    units = sorted(set(units))
    if not units:
        return stats
    todo = [
        p
        for p in sorted(set(periods))
        if p.start <= as_of
        # a year-to-date ending in the future is the running year itself
        and not (p.kind == "ytd" and p.end_month > month_of(as_of))
    ]
    if not todo:
        return stats
    levels = await unit_levels_names(session, units)
    profile = ctx.profile
    # a unit-period that gets no score (`domain.validity`: an old ward after its abolition, a
    # unit before its creation with nothing existing then) is left out here, in both the full
    # rebuild and the event-driven refresh; its facts still count in its successors' figures
    counters = await period_counters_many(
        session, units, todo, as_of, changed=changed, spans_instants=spans_instants,
        scored_only=True,
    )  # fmt: skip
    await snap.drop_unscored(
        session, profile.key, [(u, p.id) for p in todo for u in units if u not in counters[p.id]]
    )
    opened = await snap.open_alerts(session, units)
    # the units alerts may decide on in these periods: their scorecards are needed even where
    # nothing changed; for the others an unchanged unit-period is not scored again
    with_open = {u for u, _, _ in opened}
    watching: dict[str, bool] = {}
    for level, _ in levels.values():
        if level not in watching:
            watching[level] = may_decide(ctx.alert_rules, level, todo, today)
    judged = {u for u, (level, _) in levels.items() if u in with_open or watching[level]}
    cards, written = await snap.score_and_write(
        session, profile, {p.id: counters[p.id] for p in todo},
        needs_cards=None if rescore else judged,
    )  # fmt: skip
    stats.pairs = sum(len(counters[p.id]) for p in todo)
    stats.versions = sum(len(w) for w in written.values())
    for period in todo:
        await snap.rank_period(session, period, profile.key, profile.peer_class_rows())
    pids = [p.id for p in todo]
    ranks = await snap.ranks_many(session, pids, profile.key, units)
    decisions: dict[str, list[AlertDecision]] = {}
    # periods in order, each seeing the alerts the earlier ones raised, continued or cleared
    for period in todo:
        out = decisions[period.id] = []
        for u, card in cards[period.id].items():
            if u not in levels:
                continue
            rank, prev = ranks.get((period.id, u), (None, None))
            level, name = levels[u]
            obs = Observation(u, level, period.id, card, rank, prev, unit_name=name)
            found = evaluate(ctx.alert_rules, profile, obs, opened, today=today)
            apply_to_open(opened, found)
            out += found
    alert_events = await alert_decision_events(
        session,
        await with_causes(session, profile, [d for p in todo for d in decisions[p.id]], as_of),
    )
    events: list[tuple[Payload, str, str | None]] = []
    for period in todo:
        events += [
            (
                SnapshotUpdated(
                    unit_id=u, period=period.id, profile=profile.key, version=v, total=t,
                    max_total=profile.max_total, rank=ranks.get((period.id, u), (None, None))[0],
                ),
                u,
                f"{u}/{period.id}",
            )
            for u, v, t in written.get(period.id, [])
        ]  # fmt: skip
        for kind, ev in alert_events.get(period.id, []):
            events.append(ev)
            if kind == "raise":
                stats.raised += 1
            else:
                stats.cleared += 1
    await ctx.outbox.add_many(session, events)
    return stats


async def with_causes(
    session: AsyncSession, profile: Profile, decisions: Sequence[AlertDecision], as_of: datetime
) -> list[AlertDecision]:
    """Raised and continued alerts of an indicator get the procedures behind its shortfall at the
    end of their messages (`explain.causes`: TenTTHC, agency, count), read from the same
    breakdown as the scorecard's explanation, all of them in a few statements
    (`store.breakdown`): a rebuild of a running year may raise one for most weak unit-periods.
    Clears keep their words."""
    out: list[AlertDecision] = []
    # only the decisions `alert_decision_events` applies: the last raise and the last update of
    # each alert (a rebuild judging a year's months in order continues an alert month by month)
    last: dict[tuple[str, str], AlertDecision] = {}
    for d in decisions:
        if d.action != "clear" and d.indicator != TOTAL:
            last[(d.alert_id, d.action)] = d
    if not last:
        return list(decisions)
    asked = list(last.values())
    found = await shortfall_breakdowns(session, [
        ShortfallQuery.of(profile.indicator(d.indicator), d.unit_id, Period.parse(d.period), as_of)
        for d in asked
    ])  # fmt: skip
    rows = {
        d.alert_id + "|" + d.period: [BreakdownRow(*r) for r in f]
        for d, f in zip(asked, found, strict=True)
    }
    units = await unit_names(session, {r.unit for rs in rows.values() for r in rs})
    procs = await procedure_names(
        session, {r.procedure for rs in rows.values() for r in rs if r.procedure}
    )
    for d in decisions:
        found_rows = rows.get(d.alert_id + "|" + d.period)
        if d.action == "clear" or d.indicator == TOTAL or not found_rows:
            out.append(d)
            continue
        vi, en = causes(profile, d.indicator, found_rows, unit_names=units, procedure_names=procs)
        out.append(
            dataclasses.replace(d, message=f"{d.message}. {vi}", message_en=f"{d.message_en}. {en}")
        )
    return out


async def alert_decision_events(
    session: AsyncSession, decisions: Sequence[AlertDecision]
) -> dict[str, list[tuple[str, tuple[Payload, str, str | None]]]]:
    """Apply raise / clear decisions in two statements; returns, per period, the events of the
    rows that actually changed state (raises first, then clears, each by alert id), so an alert
    is raised once until cleared."""
    # within one batch an alert may be raised, continued and cleared (a rebuild judges a year's
    # months in order): the raise is applied first, the last update after it, then the clear
    raises = {d.alert_id: d for d in decisions if d.action == "raise"}
    updates = {d.alert_id: d for d in decisions if d.action == "update"}
    clears = {d.alert_id: d for d in decisions if d.action == "clear"}
    out: dict[str, list[tuple[str, tuple[Payload, str, str | None]]]] = {}
    if raises:
        rows = [_alert_row(d) for d in raises.values()]
        done = (await session.execute(snap.RAISE_MANY, {"rows": json.dumps(rows)})).scalars()
        for aid in sorted(done):
            d = raises[aid]
            out.setdefault(d.period, []).append(("raise", (
                AlertRaised(alert_id=aid, rule=d.rule, unit_id=d.unit_id, indicator=d.indicator,
                            period=d.period, message=d.message, value=d.value,
                            threshold=d.threshold, title=d.title, title_en=d.title_en,
                            message_en=d.message_en, period_kind=d.period_kind,
                            in_progress=d.in_progress, judged_on=d.judged_on),
                d.unit_id, aid,
            )))  # fmt: skip
    if updates:
        rows = [_alert_row(d) for d in updates.values()]
        await session.execute(snap.UPDATE_MANY, {"rows": json.dumps(rows)})
    if clears:
        rows = [
            {"alert_id": d.alert_id, "value": d.value, "reason": snap.CLEARED_REASON,
             "in_progress": d.in_progress, "judged_on": _iso(d.judged_on)}
            for d in clears.values()
        ]  # fmt: skip
        done = (await session.execute(snap.CLEAR_MANY, {"rows": json.dumps(rows)})).scalars()
        for aid in sorted(done):
            d = clears[aid]
            out.setdefault(d.period, []).append(("clear", (
                AlertCleared(alert_id=aid, rule=d.rule, unit_id=d.unit_id, indicator=d.indicator,
                             period=d.period, value=d.value, reason=snap.CLEARED_REASON,
                             message=d.message, message_en=d.message_en),
                d.unit_id, aid,
            )))  # fmt: skip
    return out


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d is not None else None


def _alert_row(d: AlertDecision) -> dict[str, object]:
    return {
        "alert_id": d.alert_id, "rule": d.rule, "unit_id": d.unit_id, "indicator": d.indicator,
        "period": d.period, "message": d.message, "value": d.value, "threshold": d.threshold,
        "title": d.title, "title_en": d.title_en, "message_en": d.message_en,
        "period_kind": d.period_kind, "in_progress": d.in_progress,
        "judged_on": _iso(d.judged_on),
    }  # fmt: skip


async def apply_alert_decisions(
    session: AsyncSession, ctx: Scoring, decisions: Sequence[AlertDecision]
) -> tuple[int, int]:
    """Apply raise / clear decisions and add their events to the outbox; (raised, cleared)."""
    by_period = await alert_decision_events(session, decisions)
    events = [ev for evs in by_period.values() for _, ev in evs]
    await ctx.outbox.add_many(session, events)
    raised = sum(1 for evs in by_period.values() for k, _ in evs if k == "raise")
    return raised, len(events) - raised


TAKE_STALE = text("""
DELETE FROM scoring.stale s
USING (
    SELECT unit_id, month FROM scoring.stale
    WHERE enqueued_at <= now() - make_interval(secs => :debounce)
    -- what an event queued first, then the catch-up; oldest first within each
    ORDER BY priority, enqueued_at LIMIT :limit
    FOR UPDATE SKIP LOCKED
) t
WHERE s.unit_id = t.unit_id AND s.month = t.month
RETURNING s.unit_id, s.month, s.traceparent
""")


async def refresh_stale(
    session: AsyncSession,
    ctx: Scoring,
    *,
    as_of: datetime | None = None,
    debounce: timedelta = timedelta(0),
    limit: int = 5000,
    today: date | None = None,
) -> RecomputeStats:
    """Take stale (unit, month) pairs that have been quiet for `debounce`, and recompute every
    unit whose figures include them (ancestors, merged successors) for every period whose
    figures include those months."""
    as_of = as_of or datetime.now(UTC)
    rows = (
        await session.execute(TAKE_STALE, {"debounce": debounce.total_seconds(), "limit": limit})
    ).all()
    if not rows:
        return RecomputeStats()
    # the recompute continues the trace behind most of its pairs (a sync's dossiers, not the
    # procedure list synced beside it), linked to the others', so a dossier's trace reaches the
    # snapshot and the alert it changed
    counts = Counter(tp for _, _, tp in rows if tp)
    traces = sorted(counts, key=lambda tp: (-counts[tp], tp))
    with tracing.span(
        "scoring.recompute",
        parent=traces[0] if traces else None,
        links=traces[1:],
        attributes={"scoring.stale_pairs": len(rows)},
    ):
        return await _refresh(session, ctx, [(u, m) for u, m, _ in rows], as_of, today)


async def _refresh(
    session: AsyncSession,
    ctx: Scoring,
    rows: list[tuple[str, str]],
    as_of: datetime,
    today: date | None,
) -> RecomputeStats:
    by_month: dict[str, set[str]] = {}
    for unit, month in rows:
        by_month.setdefault(month, set()).add(unit)
    changed = {unit for unit, _ in rows}
    total = RecomputeStats()
    # every period's targets, then one batched recompute per distinct target set (the months of
    # one unit share theirs, so one event's fan-out is a single recompute)
    work: dict[Period, set[str]] = {}
    for month, us in by_month.items():
        targets = await aggregation_targets(session, sorted(us))
        for p in periods_containing_month(month):
            work.setdefault(p, set()).update(targets)
    batches: dict[frozenset[str], list[Period]] = {}
    for p, affected in sorted(work.items()):
        batches.setdefault(frozenset(affected), []).append(p)
    for affected_set, ps in sorted(batches.items(), key=lambda kv: min(kv[1])):
        s = await recompute(
            session, ctx, sorted(affected_set), ps, as_of, today=today, changed=changed
        )
        total.pairs += s.pairs
        total.versions += s.versions
        total.raised += s.raised
        total.cleared += s.cleared
    return total


ENQUEUE_RUNNING = text("""
INSERT INTO scoring.stale (unit_id, month, priority)
SELECT DISTINCT f.unit_id, m.month, 1
FROM scoring.facts f
CROSS JOIN unnest(CAST(:months AS text[])) AS m(month)
WHERE f.kind = 'dossier' AND f.end_at IS NULL AND f.reception_at IS NOT NULL
ON CONFLICT (unit_id, month) DO NOTHING
""")


async def enqueue_running(session: AsyncSession, now: datetime) -> None:
    """Time alone moves figures: an open dossier becomes overdue with no event, and a month's
    stocks must finally be read at its end. Queue the current and previous month of every unit
    with open dossiers (run periodically by the worker)."""
    cur = Period.containing(now)
    await session.execute(ENQUEUE_RUNNING, {"months": [cur.previous().id, cur.id]})


class StaleWorker(PeriodicWorker):
    """Debounced recomputer: every `interval` seconds, refresh pairs quiet for `debounce`;
    every `running_every`, queue the running months of units with open dossiers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        ctx: Scoring,
        *,
        interval: float = 2.0,
        debounce: timedelta = timedelta(seconds=5),
        running_every: timedelta = timedelta(hours=1),
    ) -> None:
        super().__init__(interval)
        self.sessions = sessions
        self.running_every = running_every
        self._last_running: datetime | None = None
        self.ctx = ctx
        self.debounce = debounce

    async def tick(self) -> None:
        now = datetime.now(UTC)
        if self._last_running is None or now - self._last_running >= self.running_every:
            async with transaction(self.sessions) as session:
                await enqueue_running(session, now)
            self._last_running = now
        started = time.perf_counter()
        async with transaction(self.sessions) as session:
            stats = await refresh_stale(session, self.ctx, debounce=self.debounce)
        # counted once committed
        if stats.pairs:
            RECOMPUTE_SECONDS.observe(time.perf_counter() - started)
        SNAPSHOT_VERSIONS.inc(stats.versions)
        ALERTS.labels("raised").inc(stats.raised)
        ALERTS.labels("cleared").inc(stats.cleared)
        async with self.sessions() as session:
            STALE_QUEUE.set(
                (await session.execute(text("SELECT count(*) FROM scoring.stale"))).scalar_one()
            )
        if stats.pairs:
            log.info(
                "recomputed stale pairs",
                extra={"pairs": stats.pairs, "versions": stats.versions},
            )
