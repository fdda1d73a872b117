"""Profiles, snapshots with explanations, rankings, time series, alerts, official scores."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.scoring.api.schemas import (
    Alert,
    OfficialDifference,
    RankingRow,
    SeriesPoint,
    Snapshot,
)
from services.scoring.domain.engine import card_from_doc
from services.scoring.domain.explain import BreakdownRow, explain
from services.scoring.domain.facts import COUNTERS
from services.scoring.domain.par_index import load_par_framework
from services.scoring.domain.periods import InvalidPeriod, Period, vn_today
from services.scoring.domain.profile import Profile, bundled_profiles, load_profile
from services.scoring.recompute import default_profile
from services.scoring.store import snapshots as snap
from services.scoring.store.breakdown import ShortfallQuery, shortfall_breakdowns
from services.scoring.store.facts_store import enqueue_stale
from services.scoring.store.registry import procedure_names, unit_names
from services.scoring.store.snapshots import remediation_share
from shared.app import SessionDep
from shared.auth import Principal, Role, current_principal, require_roles
from shared.bounds import Instant, Limit, Version, Year
from shared.problems import BadRequest, NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["scores"])
profiles_router = APIRouter(prefix="/api/v1", tags=["profiles"])
alerts_router = APIRouter(prefix="/api/v1", tags=["alerts"])
official_router = APIRouter(prefix="/api/v1", tags=["official"])
DEFAULT_PROFILE = default_profile().key  # SCORING_PROFILE, 766@1 unless configured

PrincipalDep = Annotated[Principal, Depends(current_principal)]


def parse_period(period: str) -> Period:
    try:
        return Period.parse(period)
    except InvalidPeriod as e:
        raise BadRequest(str(e)) from e


def resolve_profile(key: str) -> Profile:
    pid, _, ver = key.partition("@")
    try:
        return load_profile(pid, int(ver) if ver else None)
    except (KeyError, ValueError) as e:
        raise NotFound(f"profile {key} not found") from e


class ProfileSummary(BaseModel):
    key: str = Field(examples=["766@1"])
    id: str
    version: int
    name: str
    extends: str | None = None


@profiles_router.get(
    "/profiles", response_model=list[ProfileSummary], responses=problem_responses(401)
)
async def list_profiles(principal: PrincipalDep) -> list[ProfileSummary]:
    return [
        ProfileSummary(
            key=p.key, id=p.id, version=p.version, name=p.name,
            extends=f"{p.extends.id}@{p.extends.version}" if p.extends else None,
        )
        for p in bundled_profiles().values()
    ]  # fmt: skip


@profiles_router.get("/profiles/{key}", responses=problem_responses(401, 404))
async def get_profile(key: str, principal: PrincipalDep) -> dict[str, Any]:
    """The whole methodology profile: groups, indicators with their rules, targets."""
    return resolve_profile(key).model_dump(mode="json")


@profiles_router.get("/par-frameworks/{year}", responses=problem_responses(401, 404))
async def get_par_framework(year: Year, principal: PrincipalDep) -> dict[str, Any]:
    try:
        return load_par_framework(year).model_dump(mode="json")
    except FileNotFoundError as e:
        raise NotFound(f"no PAR INDEX framework for {year}") from e


@router.get(
    "/units/{unit_id}/scores/{period}",
    response_model=Snapshot,
    responses=problem_responses(400, 401, 404),
)
async def get_unit_score(
    unit_id: str,
    period: str,
    session: SessionDep,
    principal: PrincipalDep,
    profile: str = Query(default=DEFAULT_PROFILE, examples=["766@1"]),
    as_of: Instant | None = Query(default=None, description="The version current then."),
    version: Version | None = None,
    explain_points: bool = Query(default=True, alias="explain"),
) -> dict[str, Any]:
    """A unit's snapshot for a period, each figure citing its rule, with what cost points.

    `as_of` / `version` select an earlier immutable version; its rank and the breakdown behind
    the explanation are read from the current rankings and facts."""
    principal.ensure_unit(unit_id, "snapshot")
    p = parse_period(period)
    prof = resolve_profile(profile)
    doc = await snap.get_snapshot(session, unit_id, p.id, prof.key, as_of=as_of, version=version)
    if doc is None:
        raise NotFound("no snapshot for this unit and period")
    ranks = await snap.ranks_of(session, p.id, prof.key, [unit_id])
    rank, prev = ranks.get(unit_id, (None, None))
    card = card_from_doc(prof, doc)
    out: dict[str, Any] = {**doc, "rank": rank, "previous_rank": prev,
                           "decision_groups": None, "explanation": []}  # fmt: skip
    # the stored document keeps each indicator's figures; the card adds the profile's own
    out["indicators"] = msgspec.to_builtins(card.indicators)
    out["decision_groups"] = card.decision_group_points(prof)
    out["not_applicable"] = sorted(g for g, r in card.groups.items() if r.points is None)
    out["not_applicable_indicators"] = sorted(
        i for i, r in card.indicators.items() if r.points is None and not r.informational
    )
    out["freshness"] = await snap.freshness(session)
    if explain_points:
        now = datetime.now(UTC)
        lost = [prof.indicator(r.indicator) for r in card.indicators.values() if r.lost]
        found = await shortfall_breakdowns(
            session, [ShortfallQuery.of(ind, unit_id, p, min(now, p.end)) for ind in lost]
        )
        breakdowns: dict[str, list[BreakdownRow]] = {
            ind.id: [BreakdownRow(*r) for r in rows] for ind, rows in zip(lost, found, strict=True)
        }
        names = await unit_names(session, {r.unit for rs in breakdowns.values() for r in rs})
        procs = await procedure_names(
            session, {r.procedure for rs in breakdowns.values() for r in rs if r.procedure}
        )
        out["explanation"] = [
            {**e.__dict__, "contributors": [c.__dict__ for c in e.contributors]}
            for e in explain(prof, card, breakdowns, unit_names=names, procedure_names=procs)
        ]
    return out


@router.get(
    "/units/{unit_id}/series",
    response_model=list[SeriesPoint],
    responses=problem_responses(400, 401, 404),
)
async def get_series(
    unit_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    periods: str = Query(description="Comma-separated period ids.", examples=["202607,202608"]),
    profile: str = DEFAULT_PROFILE,
) -> list[dict[str, Any]]:
    """Latest total and group points per period, in the order asked."""
    principal.ensure_unit(unit_id, "series")
    ids = [parse_period(x.strip()).id for x in periods.split(",") if x.strip()]
    prof = resolve_profile(profile)
    rows = (await session.execute(
        text("""
        SELECT DISTINCT ON (period) period, version, total, points -> 'groups' AS groups,
               computed_at
        FROM scoring.snapshots
        WHERE unit_id = :u AND profile = :profile AND period = ANY(CAST(:ids AS text[]))
        ORDER BY period, version DESC
        """),
        {"u": unit_id, "profile": prof.key, "ids": ids},
    )).mappings().all()  # fmt: skip
    by = {r["period"]: r for r in rows}
    return [
        {"period": i, "total": by[i]["total"] if i in by else None,
         "groups": by[i]["groups"] if i in by else None,
         "version": by[i]["version"] if i in by else None}
        for i in ids
    ]  # fmt: skip


@router.get(
    "/rankings", response_model=list[RankingRow], responses=problem_responses(400, 401, 404)
)
async def get_rankings(
    session: SessionDep,
    principal: PrincipalDep,
    period: str = Query(examples=["2026Q3"]),
    level: str | None = Query(default=None, examples=["department"]),
    under: str | None = Query(default=None, examples=["P21"]),
    group: str | None = Query(default=None, examples=["progress"]),
    indicator: str | None = Query(default=None, examples=["prog_on_time"]),
    profile: str = DEFAULT_PROFILE,
) -> Response:
    """Units ranked among peers (same level and kind, same province) by total, or by one
    group's or indicator's points; officers get their own row only."""
    p = parse_period(period)
    prof = resolve_profile(profile)
    if group and group not in {g.id for g in prof.groups}:
        _missing("group", group)
    if indicator and indicator not in {i.id for i in prof.indicators}:
        _missing("indicator", indicator)
    rows = await snap.list_rankings(
        session, p.id, prof.key, level, under, group=group, indicator=indicator, group_docs=False
    )
    if group or indicator:
        by_peer: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_peer.setdefault(r["peer_group"] or "", []).append(r)
        for peers in by_peer.values():
            ordered = sorted((r for r in peers if r["value"] is not None),
                             key=lambda r: -r["value"])  # fmt: skip
            for r in peers:
                r["rank"] = None
                r["previous_rank"] = None
            prev_v, prev_rank = None, 0
            for i, r in enumerate(ordered, 1):
                r["rank"] = prev_rank if r["value"] == prev_v else i
                prev_v, prev_rank = r["value"], r["rank"]
        rows.sort(key=lambda r: (r["peer_group"] or "", r["rank"] or 10**9, r["unit_id"]))
    scope = principal.unit_scope()
    fresh = await snap.freshness(session)
    as_of = fresh["last_event_at"].isoformat() if fresh["last_event_at"] else None
    pending = fresh["recompute_pending"]
    out = []
    for r in rows:
        if scope and r["unit_id"] != scope:
            continue
        out.append({
            "unit_id": r["unit_id"], "name": r["name"], "level": r["level"], "kind": r["kind"],
            "peer_group": r["peer_group"], "rank": r["rank"], "previous_rank": r["previous_rank"],
            "rank_change": (r["previous_rank"] - r["rank"])
            if r["rank"] is not None and r["previous_rank"] is not None else None,
            "value": r["value"], "total": r["total"],
            "groups": r["group_points"],
            "peers": r["peers"], "max_total": r["max_total"],
            "applicable_max": r["applicable_max"], "not_applicable": r["not_applicable"],
            "computed_at": r["computed_at"].isoformat() if r["computed_at"] else None,
            "data_as_of": as_of, "recompute_pending": pending,
        })  # fmt: skip
    # Rows built here already have RankingRow's shape (the response_model keeps the OpenAPI
    # contract); validating thousands of them again through pydantic and then `json.dumps`
    # cost more than the query, so they are encoded once by msgspec.
    headers = {"X-Recompute-Pending": "true" if pending else "false"}
    if as_of:
        headers["X-Data-As-Of"] = as_of
    return Response(content=_JSON.encode(out), media_type="application/json", headers=headers)


_JSON = msgspec.json.Encoder()


def _missing(what: str, name: str) -> None:
    raise NotFound(f"{what} {name} not in the profile")


@alerts_router.get("/alerts", response_model=list[Alert], responses=problem_responses(401))
async def list_alerts(
    session: SessionDep,
    principal: PrincipalDep,
    unit_id: str | None = None,
    period: str | None = None,
    status: str | None = Query(default=None, pattern="^(open|cleared)$"),
    limit: Annotated[Limit, Query()] = 200,
    accept_language: str | None = Header(default=None),
) -> list[dict[str, Any]]:
    """Alerts, newest first. Titles and messages are Vietnamese, with English beside
    (`title_en`, `message_en`); `Accept-Language: en` puts the English in `title` and
    `message` (the Vietnamese then beside, in `title_vi` / `message_vi`)."""
    scope = principal.unit_scope()
    if scope:
        unit_id = scope
    rows = await session.execute(
        text("""
        SELECT alert_id, rule, unit_id, indicator, period, status, message, value, threshold,
               raised_at, cleared_at, title, title_en, message_en, period_kind, in_progress,
               judged_on, cleared_reason
        FROM scoring.alerts
        WHERE (CAST(:u AS text) IS NULL OR unit_id = :u)
          AND (CAST(:p AS text) IS NULL OR period = :p)
          AND (CAST(:s AS text) IS NULL OR status = :s)
        ORDER BY raised_at DESC, alert_id LIMIT :limit
        """),
        {"u": unit_id, "p": period, "s": status, "limit": limit},
    )
    out = [dict(r) for r in rows.mappings().all()]
    if prefers_english(accept_language):
        for a in out:
            a["title_vi"], a["message_vi"] = a["title"], a["message"]
            a["title"] = a["title_en"] or a["title"]
            a["message"] = a["message_en"] or a["message"]
    return out


def prefers_english(accept_language: str | None) -> bool:
    """Whether English is ranked above Vietnamese (Vietnamese is the default)."""
    best: dict[str, float] = {}
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if lang in ("en", "vi"):
            best[lang] = max(best.get(lang, 0.0), q)
    return best.get("en", 0.0) > best.get("vi", 0.0)


class OfficialScore(BaseModel):
    unit_id: str = Field(examples=["P21"])
    period: str = Field(examples=["2026Q3"])
    profile: str = Field(default=DEFAULT_PROFILE)
    item: str = Field(default="total", description="`total`, a group id or an indicator id.")
    points: float = Field(ge=0, le=100)


class OfficialImport(BaseModel):
    source: str = Field(examples=["dichvucong.gov.vn 2026-10-05"])
    scores: list[OfficialScore]


@official_router.post("/official-scores", responses=problem_responses(400, 401, 403))
async def import_official_scores(
    body: OfficialImport,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector))],
) -> dict[str, int]:
    """Store officially published scores beside ours (never overwriting ours)."""
    for s in body.scores:
        parse_period(s.period)
    n = await snap.import_official(session, [s.model_dump() for s in body.scores], body.source,
                                   principal.subject)  # fmt: skip
    return {"imported": n}


@official_router.get(
    "/official-scores/differences",
    response_model=list[OfficialDifference],
    responses=problem_responses(400, 401, 404),
)
async def official_differences(
    session: SessionDep,
    principal: PrincipalDep,
    period: str,
    profile: str = DEFAULT_PROFILE,
    unit_id: str | None = None,
) -> list[dict[str, Any]]:
    """Official vs computed points per unit and item (total, group or indicator); for an
    indicator, the published numerator and denominator beside ours and which input differs,
    so an official can tell a data gap (numerator / denominator) from a method gap."""
    p = parse_period(period)
    prof = resolve_profile(profile)
    scope = principal.unit_scope()
    if scope:
        unit_id = scope
    rows = (await session.execute(
        text("""
        WITH latest AS (
            SELECT DISTINCT ON (unit_id) unit_id, total, points, indicators
            FROM scoring.snapshots WHERE period = :p AND profile = :profile
              AND (CAST(:unit AS text) IS NULL OR unit_id = :unit)
            ORDER BY unit_id, version DESC
        )
        SELECT o.unit_id, o.item, o.points AS official, o.source, o.external_code,
               o.numerator AS official_numerator, o.denominator AS official_denominator,
               o.ratio AS official_ratio, o.max_points AS official_max,
               CASE WHEN o.item = 'total' THEN l.total
                    ELSE COALESCE((l.points -> 'groups' ->> o.item)::float8,
                                  (l.points -> 'indicators' ->> o.item)::float8) END AS ours,
               (l.indicators -> o.item ->> 'numerator')::float8 AS our_numerator,
               (l.indicators -> o.item ->> 'denominator')::float8 AS our_denominator,
               (l.indicators -> o.item ->> 'ratio')::float8 AS our_ratio
        FROM scoring.official_scores o
        LEFT JOIN latest l ON l.unit_id = o.unit_id
        WHERE o.period = :p AND o.profile = :profile
          AND (CAST(:unit AS text) IS NULL OR o.unit_id = :unit)
        ORDER BY o.unit_id, o.item
        """),
        {"p": p.id, "profile": prof.key, "unit": unit_id},
    )).mappings().all()  # fmt: skip
    groups = {g.id for g in prof.groups}
    inds = {i.id: i for i in prof.indicators}
    # the portal's own group points per unit, where it published every group's
    published: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["item"] in groups and r["official"] is not None:
            published.setdefault(r["unit_id"], {})[r["item"]] = r["official"]
    group_sums = {u: round(sum(g.values()), 2) for u, g in published.items() if set(g) == groups}
    out = []
    for r in rows:
        row = dict(r)
        item = row["item"]
        kind = "total" if item == "total" else "group" if item in groups else "indicator"
        diff = (
            round(row["ours"] - row["official"], 4)
            if row["ours"] is not None and row["official"] is not None
            else None
        )
        differs = input_difference(row, diff) if kind == "indicator" else None
        groups_sum = group_sums.get(row["unit_id"]) if kind == "total" else None
        if groups_sum is not None and row["official"] is not None:
            differs = total_difference(row["official"], groups_sum, diff)
        ind = inds.get(item)
        out.append({
            **row, "difference": diff, "kind": kind, "differs": differs,
            "official_groups_sum": groups_sum, "name": ind.name if ind else None,
            "note": DIFFERS_NOTE.get(differs or "", ""),
        })  # fmt: skip
    return out


def total_difference(official: float, groups_sum: float, diff: float | None) -> str | None:
    """Whether the portal's total is the sum of its own group points: the portal's files flag
    units whose published total is not (`sourceScoreDiscrepancy`, up to ±12 points), and then a
    gap to ours is the portal's, not a data or method gap."""
    if abs(official - groups_sum) > 0.01:
        return "portal_total"
    if diff is None:  # nothing of ours to compare
        return None
    return "none" if abs(diff) <= 0.01 else "groups"


DIFFERS_NOTE = {
    "numerator": "Tử số khác: thiếu hoặc thừa dữ liệu hồ sơ (data gap)",
    "denominator": "Mẫu số khác: phạm vi hồ sơ, TTHC khác nhau (data gap)",
    "both": "Cả tử số và mẫu số khác (data gap)",
    "method": "Cùng tử số, mẫu số mà điểm khác: khác cách tính (method gap)",
    "none": "Khớp",
    "unknown": "Cổng không công bố tử số, mẫu số",
    "portal_total": "Tổng điểm Cổng công bố khác tổng điểm các nhóm của chính Cổng "
    "(the portal's total is not the sum of its own groups)",
    "groups": "Tổng khác do điểm các nhóm khác (the groups differ)",
}


def input_difference(row: dict[str, Any], diff: float | None) -> str:
    """Which input explains a points difference of one indicator: the published numerator or
    denominator differing from ours (a data gap), neither (a method gap), or none at all."""
    on, od = row["official_numerator"], row["official_denominator"]
    un, ud = row["our_numerator"], row["our_denominator"]
    if on is None or od is None:
        return "none" if diff is not None and abs(diff) <= 0.01 else "unknown"
    num = un is None or abs(on - un) > 1e-6
    den = ud is None or abs(od - ud) > 1e-6
    if num and den:
        return "both"
    if num or den:
        return "numerator" if num else "denominator"
    return "none" if diff is None or abs(diff) <= 0.01 else "method"


@router.get("/units/{unit_id}/remediation", responses=problem_responses(401, 404))
async def get_remediation(
    unit_id: str, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Share of inspection findings handled, and handled on time (from tasks' events)."""
    principal.ensure_unit(unit_id, "unit")
    shares = await remediation_share(session, [unit_id], vn_today())
    return {"unit_id": unit_id, **shares.get(unit_id, {"items": 0, "handled": 0, "overdue": 0,
            "handled_share": None, "handled_on_time_share": None})}  # fmt: skip


class ManualCounterIn(BaseModel):
    value: float = Field(ge=0, examples=[120])


@router.put("/units/{unit_id}/counters/{month}/{counter}",
            responses=problem_responses(400, 401, 403, 404))  # fmt: skip
async def put_manual_counter(
    unit_id: str,
    month: str,
    counter: str,
    body: ManualCounterIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector))],
) -> dict[str, Any]:
    """Enter a counter that has no dossier-level source (personal data store use, e-certified
    copies, complaints…) for one unit and month; the figures depending on it are refreshed."""
    p = parse_period(month)
    if p.kind != "month":
        raise BadRequest("counters are entered per month (YYYYMM)")
    if counter not in COUNTERS or COUNTERS[counter].kind != "manual":
        raise NotFound(f"{counter} is not a manually entered counter")
    await session.execute(
        text("""
        INSERT INTO scoring.manual_counters (unit_id, month, counter, value, entered_by)
        VALUES (:u, :m, :c, :v, :by)
        ON CONFLICT (unit_id, month, counter) DO UPDATE SET value = excluded.value,
            entered_by = excluded.entered_by, entered_at = now()
        """),
        {"u": unit_id, "m": p.id, "c": counter, "v": body.value, "by": principal.subject},
    )
    await enqueue_stale(session, [(unit_id, p.id)])
    return {"unit_id": unit_id, "month": p.id, "counter": counter, "value": body.value}
