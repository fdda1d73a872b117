"""The pages: province overview, rankings, a unit, remediation, alerts, communes (grid).

Every figure comes from the services' public APIs with the user's own token, so an officer
sees what the API lets them see (their agency) and an integrator can get the same numbers."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.dashboard.api.auth import User
from services.dashboard.api.client import Api
from services.dashboard.domain import figures as fig
from services.dashboard.domain import geomap
from services.dashboard.domain.explain import explain_vi

router = APIRouter()
VN = ZoneInfo("Asia/Ho_Chi_Minh")
LEVELS = {"department": "Sở, ban, ngành", "commune": "Xã, phường, đặc khu",
          "district": "Huyện, thị xã", "province": "Tỉnh, thành phố"}  # fmt: skip
STATUS_VI = {"not_started": "Chưa thực hiện", "in_progress": "Đang thực hiện",
             "reported": "Chờ xác nhận", "accepted": "Đã hoàn thành", "cancelled": "Đã hủy"}  # fmt: skip
TIMELINESS_VI = {"done_on_time": "Hoàn thành đúng hạn", "done_late": "Hoàn thành quá hạn",
                 "in_progress_within_time": "Trong hạn", "due_soon": "Sắp đến hạn",
                 "overdue": "Quá hạn", "no_deadline": "Không có thời hạn", "cancelled": "Đã hủy"}  # fmt: skip


def api(request: Request, user: dict[str, Any]) -> Api:
    state = request.app.state
    return Api(state.http, state.urls, user["token"])


def period_of(request: Request, period: str | None) -> str:
    settings = request.app.state.settings
    return period or settings.period or fig.current_month(datetime.now(VN).date())


async def profile(request: Request, client: Api) -> dict[str, Any]:
    cached = request.app.state.profile
    if cached is None:
        profiles = await client.get("scoring", "/api/v1/profiles") or []
        key = profiles[0]["key"] if profiles else "766@1"
        for p in profiles:
            if p["key"] == "766@1":
                key = p["key"]
        cached = await client.get("scoring", f"/api/v1/profiles/{key}") or {}
        request.app.state.profile = cached
    return dict(cached)


def render(request: Request, name: str, user: dict[str, Any], **ctx: Any) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, name, {"user": user, "fig": fig, "levels": LEVELS, **ctx}
    )


def freshness(*docs: dict[str, Any] | None) -> str | None:
    """The newest 'as of' among documents, reading the fields scoring has or may add."""
    stamps: list[str] = []
    for doc in docs:
        for key in ("data_as_of", "as_of", "facts_as_of", "computed_at"):
            if doc and isinstance(doc.get(key), str):
                stamps.append(doc[key])
                break
    if not stamps:
        return None
    newest = max(stamps)
    try:
        return datetime.fromisoformat(newest).astimezone(VN).strftime("%H:%M ngày %d/%m/%Y")
    except ValueError:
        return newest


@router.get("/", include_in_schema=False)
async def home(user: User) -> Response:
    if user["role"] == "officer" and user.get("unit"):
        return RedirectResponse(f"/units/{user['unit']}", status_code=303)
    return RedirectResponse("/overview", status_code=303)


@router.get("/overview", response_class=HTMLResponse)
async def overview(request: Request, user: User, period: str | None = None) -> Response:
    if user["role"] == "officer" and user.get("unit"):
        return RedirectResponse(f"/units/{user['unit']}", status_code=303)
    client = api(request, user)
    province = request.app.state.settings.province
    p = period_of(request, period)
    if period is None and request.app.state.settings.period is None:
        p = await latest_scored(client, province, p)
    prof = await profile(request, client)
    prev = fig.previous_period(p)
    months = fig.previous_months(p, 6)
    (card, unit, prev_card, series, official, departments, communes, provinces,
     runs) = await client.gather(
        client.get("scoring", f"/api/v1/units/{province}/scores/{p}"),
        client.get("scoring", f"/api/v1/units/{province}"),
        client.get("scoring", f"/api/v1/units/{province}/scores/{prev}", explain="false")
        if prev else _none(),
        client.get("scoring", f"/api/v1/units/{province}/series", periods=",".join(months)),
        client.get("scoring", "/api/v1/official-scores/differences", period=p),
        client.get("scoring", "/api/v1/rankings", period=p, level="department", under=province),
        client.get("scoring", "/api/v1/rankings", period=p, level="commune", under=province),
        client.get("scoring", "/api/v1/units", level="province"),
        client.get("ingest", "/api/v1/runs", status="succeeded", limit=1, optional=True),
    )  # fmt: skip
    groups = [
        {"id": g["id"], "name": g["name"], "max": g["max"],
         "points": ((card or {}).get("groups", {}).get(g["id"]) or {}).get("points"),
         "previous": ((prev_card or {}).get("groups", {}).get(g["id"]) or {}).get("points")}
        for g in prof.get("groups", [])
    ]  # fmt: skip
    total = (card or {}).get("total")
    prev_total = (prev_card or {}).get("total")
    national = national_rank(province, total, official or [], provinces or [])
    movement = {"up": 0, "down": 0, "same": 0}
    fell: list[dict[str, Any]] = []
    for r in (departments or []) + (communes or []):
        ch = r.get("rank_change")
        if ch is None:
            continue
        movement["up" if ch > 0 else "down" if ch < 0 else "same"] += 1
        if ch < 0:
            fell.append(r)
    fell.sort(key=lambda r: r["rank_change"])
    trend = [s.get("total") for s in series or []]
    # At most three issues, the leader's morning read: where the most points were lost.
    indicators = {i["id"]: i for i in prof.get("indicators", [])}
    worst = sorted((card or {}).get("explanation", []), key=lambda e: -float(e.get("lost") or 0))
    names = {r["unit_id"]: r["name"] for r in (departments or []) + (communes or [])}
    names[province] = (unit or {}).get("name", province)
    issues = [explain_vi(e, indicators.get(e["indicator"]), names) for e in worst[:3]]
    return render(
        request,
        "overview.html",
        user,
        issues=issues,
        period=p,
        prev=prev,
        card=card,
        unit=unit or {},
        total=total,
        max_total=(card or {}).get("max_total") or prof.get("max_total", 100),
        delta=None if total is None or prev_total is None else total - prev_total,
        groups=groups,
        national=national,
        movement=movement,
        fell=fell[:10],
        trend=fig.sparkline(
            trend, [fig.short_period(m) for m in months], prof.get("max_total", 100)
        ),
        as_of=freshness(card),
        pulled_at=freshness({"as_of": runs[0].get("finished_at")} if runs else None),
        departments=len(departments or []),
        communes=len(communes or []),
    )


def national_rank(province: str, total: float | None, official: list[dict[str, Any]],
                  provinces: list[dict[str, Any]]) -> tuple[int, int] | None:  # fmt: skip
    """(rank, of how many) among the provinces whose official totals are published: ours is the
    official total when published, else our own computation."""
    ids = {u["id"] for u in provinces}
    totals = {r["unit_id"]: r["official"] for r in official
              if r.get("item") == "total" and r["unit_id"] in ids}  # fmt: skip
    mine = totals.get(province, total)
    if not totals or mine is None:
        return None
    others = [v for u, v in totals.items() if u != province]
    return 1 + sum(1 for v in others if v > mine), len(others) + 1


async def latest_scored(client: Api, unit_id: str, month: str) -> str:
    """This month, or the latest of the three before it that has a score (early in a month the
    new month may not be scored yet; a newcomer should still see figures)."""
    candidates = fig.previous_months(month, 4)[::-1]
    series = await client.get("scoring", f"/api/v1/units/{unit_id}/series",
                              periods=",".join(candidates)) or []  # fmt: skip
    for point in series:
        if point.get("total") is not None:
            return str(point["period"])
    return month


async def _none() -> None:
    return None


@router.get("/rankings", response_class=HTMLResponse)
async def rankings(request: Request, user: User, period: str | None = None,
                   level: str = "department", sort: str = "rank") -> Response:  # fmt: skip
    client = api(request, user)
    p = period_of(request, period)
    prof = await profile(request, client)
    rows = await client.get("scoring", "/api/v1/rankings", period=p, level=level,
                            under=request.app.state.settings.province) or []  # fmt: skip
    groups = prof.get("groups", [])
    if sort in {g["id"] for g in groups}:
        rows.sort(key=lambda r: -((r.get("groups") or {}).get(sort) or -1))
    elif sort == "total":
        rows.sort(key=lambda r: -(r.get("total") or -1))
    return render(request, "rankings.html", user, period=p, level=level, rows=rows,
                  groups=groups, max_total=prof.get("max_total", 100), sort=sort)  # fmt: skip


@router.get("/units/{unit_id}", response_class=HTMLResponse)
async def unit_page(request: Request, unit_id: str, user: User,
                    period: str | None = None) -> Response:  # fmt: skip
    client = api(request, user)
    p = period_of(request, period)
    prof = await profile(request, client)
    months = fig.previous_months(p, 6)
    unit, card, series, alerts, items, subtree = await client.gather(
        client.get("scoring", f"/api/v1/units/{unit_id}"),
        client.get("scoring", f"/api/v1/units/{unit_id}/scores/{p}"),
        client.get("scoring", f"/api/v1/units/{unit_id}/series", periods=",".join(months)),
        client.get("scoring", "/api/v1/alerts", unit_id=unit_id, status="open"),
        client.get("tasks", "/api/v1/items", unit_id=unit_id, limit=200),
        client.get("scoring", "/api/v1/units", under=unit_id),
    )
    if unit is None:
        return render(request, "missing.html", user, what="Không tìm thấy đơn vị")
    indicators = {i["id"]: i for i in prof.get("indicators", [])}
    names = {u["id"]: u["name"] for u in subtree or []} | {unit_id: unit["name"]}
    lost = [
        explain_vi(e, indicators.get(e["indicator"]), names)
        for e in (card or {}).get("explanation", [])
    ]
    groups = [
        {"id": g["id"], "name": g["name"], "max": g["max"],
         "points": ((card or {}).get("groups", {}).get(g["id"]) or {}).get("points"),
         "indicators": [
             {**i, **((card or {}).get("indicators", {}).get(i["id"]) or {})}
             for i in prof.get("indicators", []) if i["group"] == g["id"]]}
        for g in prof.get("groups", [])
    ]  # fmt: skip
    return render(
        request, "unit.html", user, period=p, unit=unit, card=card, groups=groups, lost=lost,
        trend=fig.sparkline([s.get("total") for s in series or []],
                            [fig.short_period(m) for m in months], prof.get("max_total", 100)),
        alerts=alerts or [], items=(items or {}).get("items", []), as_of=freshness(card),
        status_vi=STATUS_VI, timeliness_vi=TIMELINESS_VI,
        max_total=(card or {}).get("max_total") or prof.get("max_total", 100),
    )  # fmt: skip


@router.get("/remediation", response_class=HTMLResponse)
async def remediation(request: Request, user: User) -> Response:
    client = api(request, user)
    report, items = await client.gather(
        client.get("tasks", "/api/v1/reports/province"),
        client.get("tasks", "/api/v1/items", limit=500),
    )
    report = report or {"agencies": [], "by_status": {}, "by_timeliness": {}, "total": 0}
    conclusion_ids = list(dict.fromkeys(
        i["conclusion_id"] for i in (items or {}).get("items", []) if i.get("conclusion_id")
    ))[:12]  # fmt: skip
    docs = await client.gather(*[client.get("tasks", f"/api/v1/conclusions/{c}")
                                 for c in conclusion_ids])  # fmt: skip
    progress = await client.gather(*[client.get("tasks", f"/api/v1/reports/conclusions/{c}")
                                     for c in conclusion_ids])  # fmt: skip
    conclusions = [{"doc": d, "progress": pr} for d, pr in zip(docs, progress, strict=True)
                   if d and pr]  # fmt: skip
    overdue = sorted((o | {"unit_name": a.get("unit_name") or a["unit_id"]}
                      for a in report["agencies"] for o in a.get("overdue", [])),
                     key=lambda o: -o["days_overdue"])  # fmt: skip
    return render(request, "remediation.html", user, report=report, overdue=overdue[:100],
                  conclusions=conclusions, status_vi=STATUS_VI,
                  timeliness_vi=TIMELINESS_VI)  # fmt: skip


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(request: Request, user: User, status: str = "open") -> Response:
    client = api(request, user)
    rows = await client.get("scoring", "/api/v1/alerts",
                            status=status if status in ("open", "cleared") else None,
                            limit=300) or []  # fmt: skip
    units = await client.get("scoring", "/api/v1/units") or []
    names = {u["id"]: u["name"] for u in units}
    return render(request, "alerts.html", user, rows=rows, names=names, status=status)


@router.get("/communes", response_class=HTMLResponse)
async def communes(request: Request, user: User, period: str | None = None) -> Response:
    """Communes coloured by score: a map when the province uploaded boundaries to the unit
    registry, else the same information as a grid."""
    client = api(request, user)
    p = period_of(request, period)
    prof = await profile(request, client)
    province = request.app.state.settings.province
    rows, shapes = await client.gather(
        client.get("scoring", "/api/v1/rankings", period=p, level="commune", under=province),
        client.get("scoring", f"/api/v1/units/{province}/boundaries"),
    )
    rows = sorted(rows or [], key=lambda r: r["name"])
    maximum = prof.get("max_total", 100)
    svg = ""
    if shapes:
        scores = {r["unit_id"]: r for r in rows}
        # thousands of polygons are CPU work: drawn off the event loop
        svg = await asyncio.to_thread(geomap.choropleth, shapes, scores, maximum, p)
    return render(request, "communes.html", user, period=p, rows=rows, max_total=maximum,
                  map_svg=svg)  # fmt: skip


@router.get("/exports/{name}")
async def export(request: Request, name: str, user: User, period: str | None = None,
                 level: str = "department") -> Response:  # fmt: skip
    """The printable reports, fetched with the user's token (the browser has no bearer)."""
    state = request.app.state
    if name in ("rankings.pdf", "rankings.xlsx"):
        url = f"{state.urls['scoring']}/api/v1/exports/{name}"
        params = {"period": period_of(request, period), "level": level,
                  "under": state.settings.province}  # fmt: skip
    elif name in ("province-report.pdf", "province-report.xlsx"):
        url = f"{state.urls['tasks']}/api/v1/exports/province-report"
        params = {"format": name.rsplit(".", 1)[1]}
    else:
        return render(request, "missing.html", user, what="Không có báo cáo này")
    r = await state.http.get(url, params=params, timeout=180,
                             headers={"Authorization": f"Bearer {user['token']}"})  # fmt: skip
    if r.status_code != 200:
        return render(request, "missing.html", user, what="Chưa tạo được báo cáo, thử lại sau")
    keep = {k: v for k, v in r.headers.items() if k.lower() in ("content-type",
                                                                "content-disposition")}  # fmt: skip
    return Response(r.content, headers=keep)
