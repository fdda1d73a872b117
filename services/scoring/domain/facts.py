"""Fact counters: how one dossier, procedure or petition contributes to leaf counters.

Leaf grain is **(unit, procedure, month)** — the month in Vietnam time. Every indicator figure is
built from sums of leaf counters, which is what keeps the store set-based:

* **flow** counters count events dated in a month (a dossier received, finished, a petition
  handled). A period's value is the SUM over its months; a parent unit's value is the SUM over its
  subtree. Fully additive.
* **stock** counters describe the state at the *end* of a month (a dossier open and still within
  time, a procedure offered online). They are not additive over time: a period reads them at the
  month containing its end (`Period.end_month`; for the running month, at the as-of instant). They
  are additive over units.
* **distinct** counters count (unit, procedure) pairs whose flow counter summed over the period is
  > 0, optionally only procedures flagged by a stock counter at the period end ("online services
  with ≥1 online dossier"). They are additive over units (pairs), not over months, so the store
  computes them from the (unit, procedure, month) rows of the period, never from monthly totals.
* **derived** counters are sums of other counters (e.g. `processed_or_open` = finished + open).

Every counter names the fact rule that produced it (`FACT_RULE_ID`, or `OnTimeRule.id`), and
indicators name their counters, so every figure can say which rule produced it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.scoring.domain.periods import VN_TZ, Period, month_of
from shared.events.payloads import DossierRecord, PetitionRecord, ProcedureRecord

FACT_RULE_ID = "facts.v1"

CounterKind = Literal["flow", "stock", "distinct", "derived", "manual"]
NO_PROCEDURE = ""
"""Procedure key of counters that have no procedure (petitions, manual entries)."""


class CounterDef(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: CounterKind
    description: str
    terms: tuple[str, ...] = ()
    """derived: the counters summed; a term written `-name` is subtracted."""
    flow: str | None = None
    """distinct: the flow counter that must be > 0 over the period."""
    require_stock: str | None = None
    """distinct: only procedures with this stock counter > 0 at the period end."""


def _c(name: str, kind: CounterKind, description: str, **kw: object) -> CounterDef:
    return CounterDef(name=name, kind=kind, description=description, **kw)


COUNTERS: dict[str, CounterDef] = {
    c.name: c
    for c in (
        # dossiers, flows dated by reception
        _c("received", "flow", "dossiers received in the month"),
        _c("received_online", "flow", "received with channel 2 (online)"),
        _c("synced", "flow", "received and synced to DVCQG"),
        _c("fee_dossiers", "flow", "received with a financial obligation"),
        _c("paid_online", "flow", "received with a fee, paid online (DVCQG or local gateway)"),
        _c("digitised", "flow", "received with digitised components"),
        _c("digitised_e_result", "flow", "received with digitised components and an e-result"),
        _c("reused", "flow", "received reusing digitised data"),
        _c("vneid", "flow", "received from a VNeID-verified account"),
        # dossiers, flows dated by the end of processing
        _c(
            "finished",
            "flow",
            "dossiers finished (rejected, stopped, processed, returned, withdrawn)",
        ),
        _c("finished_on_time", "flow", "finished no later than the (effective) promised date"),
        _c("finished_late", "flow", "finished after the promised date, or late by rule"),
        _c("needs_result", "flow", "finished with a result to return (status 9 or 10)"),
        _c("e_result", "flow", "needing a result and issued an electronic result"),
        # dossiers, stocks at the end of the month
        _c("open_at_end", "stock", "received, not finished, not waiting for a supplement"),
        _c("open_within_time", "stock", "open at the end and not past the promised date"),
        _c("open_overdue", "stock", "open at the end and past the promised date"),
        _c(
            "on_time_or_within",
            "derived",
            "finished on time + open within time",
            terms=("finished_on_time", "open_within_time"),
        ),
        _c(
            "processed_or_open",
            "derived",
            "finished in the period + open at its end",
            terms=("finished", "open_at_end"),
        ),
        _c(
            "late_total",
            "derived",
            "finished late + open overdue",
            terms=("finished_late", "open_overdue"),
        ),
        # procedures (TTHC)
        _c("proc_published", "flow", "TTHC published in the month"),
        _c("proc_published_on_time", "flow", "published no later than the publication deadline"),
        _c("proc_public_due", "flow", "TTHC whose make-public deadline falls in the month"),
        _c("proc_public_on_time", "flow", "of those, made public by the deadline"),
        _c("proc_public", "flow", "TTHC made public in the month"),
        _c("proc_public_complete", "flow", "made public with complete content"),
        _c("proc_total", "stock", "TTHC in the unit's list at the end of the month"),
        _c("proc_online", "stock", "TTHC offered online (partial or full)"),
        _c("proc_fee", "stock", "TTHC with a fee"),
        _c(
            "proc_online_with_dossiers",
            "distinct",
            "online TTHC with ≥1 online dossier",
            flow="received_online",
            require_stock="proc_online",
        ),
        _c(
            "proc_fee_with_dossiers",
            "distinct",
            "fee TTHC with ≥1 dossier",
            flow="received",
            require_stock="proc_fee",
        ),
        _c(
            "proc_fee_paid_online",
            "distinct",
            "fee TTHC with ≥1 dossier paid online",
            flow="paid_online",
            require_stock="proc_fee",
        ),
        # petitions (PAKN), dated by handling
        _c("pakn_handled", "flow", "petitions handled in the month"),
        _c("pakn_handled_on_time", "flow", "handled no later than their due date"),
        _c("pakn_rated", "flow", "handled and rated by the citizen"),
        _c("pakn_satisfied", "flow", "rated satisfied"),
        # entered or imported figures with no dossier-level source yet
        _c("pds_base", "manual", "dossiers eligible to use the personal data store"),
        _c("pds_used", "manual", "dossiers using the personal data store"),
        _c("e_cert_requests", "manual", "certified-copy requests"),
        _c("e_cert_issued", "manual", "certified copies issued electronically"),
        _c("citizen_data_base", "manual", "dossiers eligible for national population data"),
        _c("citizen_data_used", "manual", "dossiers filled from national population data"),
        _c("complaints", "manual", "complaints about dossier handling"),
        # ---- counters of the portal's 2026 metrics (profile 766@2) where the portal keeps a
        # denominator or a numerator apart from the ones above
        _c(
            "sync_due",
            "derived",
            "dossiers that must be synced to DVCQG (the portal uses a national-report figure; "
            "ours is every dossier received)",
            terms=("received",),
        ),
        _c(
            "online_base",
            "derived",
            "dossiers the online share is taken of (the portal's is a few below received)",
            terms=("received",),
        ),
        _c(
            "dossier_satisfied",
            "derived",
            "received, neither late nor complained about: received − late − complaints",
            terms=("received", "-late_total", "-complaints"),
        ),
        _c("finished_hours", "flow", "hours from reception to the end, summed over finished"),
        _c("received_e_result", "flow", "received with an electronic result"),
        _c("received_online_on_time", "flow", "received online and, as last known, not late"),
        _c(
            "received_on_time",
            "flow",
            "received and, as last known, not late (finished on time, or open within time)",
        ),
        _c(
            "on_time_base",
            "derived",
            "dossiers the portal's on-time share is taken of: every dossier received",
            terms=("received",),
        ),
        _c("pds_synced", "flow", "received, digitised data synced to the DVCQG personal store"),
        _c("citizen_data_dossiers", "flow", "received using national population data"),
        _c("pakn_about_tthc", "flow", "petitions handled about procedures (TTHC)"),
        _c("pakn_about_staff", "flow", "petitions handled about staff conduct"),
        _c("proc_full_eligible", "stock", "TTHC eligible for a full-process online service"),
        _c("proc_online_full", "stock", "eligible TTHC offered as a full-process online service"),
        _c("proc_citizen_data", "stock", "TTHC connected to national population data"),
        _c("proc_e_cert", "stock", "certification TTHC (chứng thực bản sao từ bản chính)"),
        _c("proc_e_cert_online", "stock", "certification TTHC offering e-certified copies"),
    )
}


def derived_value(cdef: CounterDef, get: Callable[[str, float], float]) -> float:
    """A derived counter from its terms (`-name` subtracts)."""
    total = 0.0
    for t in cdef.terms:
        total += -get(t[1:], 0.0) if t.startswith("-") else get(t, 0.0)
    return total


FLOW_COUNTERS: tuple[str, ...] = tuple(n for n, d in COUNTERS.items() if d.kind == "flow")
"""The leaf counters: one column each in `scoring.leaf_flows` (migration `scoring_0006`)."""


class OnTimeRule(BaseModel):
    """How a dossier is judged on time (domain brief §2), as data.

    Defaults follow DVCQG as publicly reverse-engineered (unofficial): the supplement wait is added
    to the promised date; more than one supplement request makes a dossier late; an apology letter
    (issued only for overdue dossiers, it re-promises the date) means the dossier was late.
    """

    model_config = ConfigDict(frozen=True)

    id: str = "ontime.dvcqg.v1"
    finished_statuses: frozenset[int] = frozenset({3, 7, 8, 9, 10})
    result_statuses: frozenset[int] = frozenset({9, 10})
    paused_statuses: frozenset[int] = Field(
        default=frozenset({5}), description="Open statuses whose clock is stopped (supplement)."
    )
    exclude_supplement_days: bool = True
    max_supplements_on_time: int = 1
    apology_means_late: bool = True


DEFAULT_ON_TIME = OnTimeRule()


@dataclass(frozen=True)
class Contribution:
    """+value to counter `counter` at leaf (unit, procedure, month)."""

    unit_id: str
    procedure: str
    month: str
    counter: str
    value: int = 1


# ---------------------------------------------------------------------------------------------
# dossiers


def reception_instant(d: DossierRecord) -> datetime | None:
    """When the dossier entered processing; None if it never did (registered, not accepted)."""
    if d.received_at is not None:
        return d.received_at
    if d.status in (1, 3):
        return None
    return d.submitted_at


def end_instant(d: DossierRecord, rule: OnTimeRule = DEFAULT_ON_TIME) -> datetime | None:
    """When processing ended, for a finished status; falls back to `source_updated_at` when the
    source gives no date (the status says it ended; the source's version time bounds it)."""
    if d.status not in rule.finished_statuses:
        return None
    candidates = (
        (d.rejected_at, d.finished_at, d.returned_at)
        if d.status == 3
        else (d.finished_at, d.returned_at, d.rejected_at)
    )
    for c in candidates:
        if c is not None:
            return c
    return d.source_updated_at


def effective_due(d: DossierRecord, rule: OnTimeRule = DEFAULT_ON_TIME) -> datetime | None:
    if d.due_at is None:
        return None
    if rule.exclude_supplement_days and d.supplement_days:
        return d.due_at + timedelta(days=d.supplement_days)
    return d.due_at


def late_by_rule(d: DossierRecord, rule: OnTimeRule = DEFAULT_ON_TIME) -> bool:
    """Late regardless of dates: too many supplement requests, or an apology letter."""
    if d.supplement_count > rule.max_supplements_on_time:
        return True
    return rule.apology_means_late and d.apology_count > 0


def is_on_time_at(d: DossierRecord, at: datetime, rule: OnTimeRule = DEFAULT_ON_TIME) -> bool:
    """Finished dossiers: ended no later than the effective due date. Open dossiers: not past the
    effective due date at `at`. No due date (immediate procedures) counts as on time."""
    if late_by_rule(d, rule):
        return False
    due = effective_due(d, rule)
    if due is None:
        return True
    end = end_instant(d, rule)
    return (end if end is not None and end <= at else at) <= due


def dossier_flows(d: DossierRecord, rule: OnTimeRule = DEFAULT_ON_TIME) -> list[Contribution]:
    """Flow contributions of one dossier, at its own unit and procedure."""
    out: list[Contribution] = []
    u, p = d.unit_id, d.procedure_code

    def add(month: str, counter: str) -> None:
        out.append(Contribution(u, p, month, counter))

    rec = reception_instant(d)
    if rec is None:
        return out
    m = month_of(rec)
    add(m, "received")
    if d.channel == 2:
        add(m, "received_online")
    if d.synced_national:
        add(m, "synced")
    if d.has_fee:
        add(m, "fee_dossiers")
        if d.paid_online in (1, 2):
            add(m, "paid_online")
    if d.digitised:
        add(m, "digitised")
        if d.has_e_result:
            add(m, "digitised_e_result")
    if d.reused_data:
        add(m, "reused")
    if d.vneid_verified:
        add(m, "vneid")
    if d.has_e_result:
        add(m, "received_e_result")
    if d.pds_synced:
        add(m, "pds_synced")
    if d.citizen_data_used:
        add(m, "citizen_data_dossiers")
    # the portal's on-time shares are of the dossiers received (online), judged as last known
    if is_on_time_at(d, d.source_updated_at, rule):
        add(m, "received_on_time")
        if d.channel == 2:
            add(m, "received_online_on_time")
    end = end_instant(d, rule)
    if end is not None:
        em = month_of(end)
        add(em, "finished")
        hours = max(0, (end - rec) // timedelta(hours=1))
        if hours:
            out.append(Contribution(u, p, em, "finished_hours", hours))
        add(em, "finished_on_time" if is_on_time_at(d, end, rule) else "finished_late")
        if d.status in rule.result_statuses:
            add(em, "needs_result")
            if d.has_e_result:
                add(em, "e_result")
    return out


def dossier_stock_at(
    d: DossierRecord, at: datetime, rule: OnTimeRule = DEFAULT_ON_TIME
) -> list[str]:
    """Stock counters the dossier sets at instant `at` (a month end, or the as-of instant).

    Open = received before `at` and not ended by `at`. A dossier currently waiting for a
    supplement (status 5) is left out: its clock is stopped. Only the current status is known, so
    for past month-ends the pause is approximated by the current status (documented limitation).
    """
    rec = reception_instant(d)
    if rec is None or rec >= at:
        return []
    end = end_instant(d, rule)
    if end is not None and end < at:
        return []
    if end is None and d.status in rule.paused_statuses:
        return []
    return ["open_at_end", "open_within_time" if is_on_time_at(d, at, rule) else "open_overdue"]


def month_end(mid: str) -> datetime:
    p = Period.month(int(mid[:4]), int(mid[4:]))
    return p.end


def stock_instant(mid: str, as_of: datetime | None) -> datetime:
    """Stocks of month `mid` are read at its end, or at `as_of` if earlier (running month)."""
    end = month_end(mid)
    return min(end, as_of) if as_of is not None else end


# ---------------------------------------------------------------------------------------------
# procedures and petitions


def _day_month(d: date) -> str:
    return month_of(d)


def procedure_flows(p: ProcedureRecord) -> list[Contribution]:
    out: list[Contribution] = []
    u, c = p.unit_id, p.code
    if p.published_on is not None:
        m = _day_month(p.published_on)
        out.append(Contribution(u, c, m, "proc_published"))
        if p.publish_due_on is None or p.published_on <= p.publish_due_on:
            out.append(Contribution(u, c, m, "proc_published_on_time"))
    if p.public_due_on is not None:
        m = _day_month(p.public_due_on)
        out.append(Contribution(u, c, m, "proc_public_due"))
        if p.public_on is not None and p.public_on <= p.public_due_on:
            out.append(Contribution(u, c, m, "proc_public_on_time"))
    if p.public_on is not None:
        m = _day_month(p.public_on)
        out.append(Contribution(u, c, m, "proc_public"))
        if p.content_complete:
            out.append(Contribution(u, c, m, "proc_public_complete"))
    return out


def procedure_stock_at(p: ProcedureRecord, at: datetime) -> list[str]:
    """A procedure is in the unit's list at `at` once published (or always, if undated)."""
    if p.published_on is not None and datetime.combine(p.published_on, time(0), VN_TZ) >= at:
        return []
    out = ["proc_total"]
    if p.online_level != "none":
        out.append("proc_online")
    if p.has_fee:
        out.append("proc_fee")
    if p.full_online_eligible:
        out.append("proc_full_eligible")
        if p.online_level == "full":
            out.append("proc_online_full")
    if p.citizen_data_connected:
        out.append("proc_citizen_data")
    if p.certification:
        out.append("proc_e_cert")
        if p.e_certified_copy:
            out.append("proc_e_cert_online")
    return out


def petition_flows(p: PetitionRecord) -> list[Contribution]:
    if p.handled_at is None:
        return []
    u, m = p.unit_id, month_of(p.handled_at)
    out = [Contribution(u, NO_PROCEDURE, m, "pakn_handled")]
    if p.due_at is None or p.handled_at <= p.due_at:
        out.append(Contribution(u, NO_PROCEDURE, m, "pakn_handled_on_time"))
    if p.satisfied is not None:
        out.append(Contribution(u, NO_PROCEDURE, m, "pakn_rated"))
        if p.satisfied:
            out.append(Contribution(u, NO_PROCEDURE, m, "pakn_satisfied"))
    if p.category == "tthc":
        out.append(Contribution(u, NO_PROCEDURE, m, "pakn_about_tthc"))
    elif p.category == "staff":
        out.append(Contribution(u, NO_PROCEDURE, m, "pakn_about_staff"))
    return out


# ---------------------------------------------------------------------------------------------
# leaf table and aggregation (the reference implementation the SQL store mirrors)

LeafKey = tuple[str, str, str, str]
"""(unit_id, procedure, month, counter)"""


def leaf_counters(
    *,
    dossiers: Iterable[DossierRecord] = (),
    procedures: Iterable[ProcedureRecord] = (),
    petitions: Iterable[PetitionRecord] = (),
    stock_months: Sequence[str] = (),
    as_of: datetime | None = None,
    manual: Iterable[Contribution] = (),
    rule: OnTimeRule = DEFAULT_ON_TIME,
) -> dict[LeafKey, int]:
    """Leaf counters of a set of facts: every flow, plus stocks at the end of `stock_months`."""
    out: dict[LeafKey, int] = defaultdict(int)
    ds, ps = list(dossiers), list(procedures)

    def put(cs: Iterable[Contribution]) -> None:
        for c in cs:
            out[(c.unit_id, c.procedure, c.month, c.counter)] += c.value

    for d in ds:
        put(dossier_flows(d, rule))
    for p in ps:
        put(procedure_flows(p))
    for pt in petitions:
        put(petition_flows(pt))
    put(manual)
    for mid in stock_months:
        at = stock_instant(mid, as_of)
        for d in ds:
            for name in dossier_stock_at(d, at, rule):
                out[(d.unit_id, d.procedure_code, mid, name)] += 1
        for p in ps:
            for name in procedure_stock_at(p, at):
                out[(p.unit_id, p.code, mid, name)] += 1
    return dict(out)


def aggregate(
    leaves: Mapping[LeafKey, int], period: Period, units: Iterable[str]
) -> dict[str, float]:
    """Counters of a period over a set of leaf units (a subtree): sums of leaf counters only.

    Flow and manual counters sum over the period's months; stocks read the end month; distinct
    counters count (unit, procedure) pairs; derived counters sum their terms.
    """
    unit_set = set(units)
    months = set(period.months)
    end = period.end_month
    totals: dict[str, float] = defaultdict(float)
    pair_flow: dict[tuple[str, str, str], int] = defaultdict(int)
    pair_stock: dict[tuple[str, str, str], int] = defaultdict(int)
    for (unit, proc, month, name), value in leaves.items():
        if unit not in unit_set:
            continue
        kind = COUNTERS[name].kind if name in COUNTERS else "flow"
        if kind == "stock":
            if month == end:
                totals[name] += value
                pair_stock[(unit, proc, name)] += value
        elif month in months:
            totals[name] += value
            pair_flow[(unit, proc, name)] += value
    for c in COUNTERS.values():
        if c.kind == "distinct":
            assert c.flow is not None
            n = 0
            for (unit, proc, name), v in pair_flow.items():
                if name != c.flow or v <= 0:
                    continue
                if c.require_stock and pair_stock.get((unit, proc, c.require_stock), 0) <= 0:
                    continue
                n += 1
            totals[c.name] = n
    for c in COUNTERS.values():
        if c.kind == "derived":
            totals[c.name] = derived_value(c, totals.get)
    return dict(totals)


def breakdown(
    leaves: Mapping[LeafKey, int], period: Period, units: Iterable[str], counter: str
) -> Iterator[tuple[str, str, float]]:
    """(procedure, unit, count) rows of one counter in a period — the input of explanations.
    Derived counters expand to their terms."""
    cdef = COUNTERS[counter]
    names = {t.lstrip("-") for t in cdef.terms} if cdef.kind == "derived" else {counter}
    unit_set, months = set(units), set(period.months)
    acc: dict[tuple[str, str], float] = defaultdict(float)
    for (unit, proc, month, name), value in leaves.items():
        if name not in names or unit not in unit_set:
            continue
        kind = COUNTERS[name].kind
        if (kind == "stock" and month == period.end_month) or (kind != "stock" and month in months):
            acc[(proc, unit)] += value
    for (proc, unit), v in sorted(acc.items()):
        yield proc, unit, v


def shortfall_rows(
    leaves: Mapping[LeafKey, int],
    period: Period,
    units: Iterable[str],
    numerator: str,
    denominator: str,
    shortfall_counter: str | None = None,
) -> list[tuple[str, str, float]]:
    """(procedure, unit, count) of an indicator's shortfall: the `shortfall_counter` when given,
    else denominator − numerator per (unit, procedure) pair, computed with `aggregate` on each
    pair so flows, stocks and distinct counters are all handled alike."""
    unit_set = set(units)
    by_pair: dict[tuple[str, str], dict[LeafKey, int]] = defaultdict(dict)
    for key, v in leaves.items():
        if key[0] in unit_set:
            by_pair[(key[0], key[1])][key] = v
    out: list[tuple[str, str, float]] = []
    for (unit, proc), sub in sorted(by_pair.items()):
        agg = aggregate(sub, period, {unit})
        if shortfall_counter:
            n = agg.get(shortfall_counter, 0.0)
        else:
            n = agg.get(denominator, 0.0) - agg.get(numerator, 0.0)
        if n > 0:
            out.append((proc, unit, n))
    return out
