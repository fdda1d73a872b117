"""Progress reports and CSV / XLSX exports (Vietnamese headers)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.tasks.api.common import today_vn
from services.tasks.api.schemas import AgencyReport, ConclusionReport, ProvinceReport
from services.tasks.store import repo
from services.tasks.store.models import Conclusion, Item, UnitRow
from shared.app import CSV_MEDIA_TYPE, SessionDep, download_responses
from shared.auth.principal import Principal
from shared.auth.security import current_principal
from shared.bounds import Day
from shared.exports import XLSX_MEDIA_TYPE, csv_response, xlsx_response
from shared.problems import NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["reports"])
Reader = Annotated[Principal, Depends(current_principal)]


def _rate(t: dict[str, int]) -> float | None:
    due = t.get("done_on_time", 0) + t.get("done_late", 0) + t.get("overdue", 0)
    return round(t.get("done_on_time", 0) / due, 4) if due else None


async def _agency_reports(
    session: AsyncSession, clauses: list[ColumnElement[bool]], today: date
) -> list[AgencyReport]:
    tl_expr = repo.timeliness_expr(today)
    rows = (
        await session.execute(
            select(Item.lead_unit_id, Item.status, tl_expr.label("t"), func.count())
            .where(*clauses)
            .group_by(Item.lead_unit_id, Item.status, tl_expr)
        )
    ).all()
    by_unit: dict[str, dict[str, dict[str, int]]] = defaultdict(
        lambda: {"status": defaultdict(int), "timeliness": defaultdict(int)}
    )
    for unit_id, status, tclass, n in rows:
        by_unit[unit_id]["status"][status] += n
        by_unit[unit_id]["timeliness"][tclass] += n
    overdue_rows = (
        await session.execute(
            select(Item.id, Item.lead_unit_id, Item.title, Item.deadline)
            .where(*clauses, tl_expr == "overdue")
            .order_by(Item.deadline, Item.id)
            .limit(1000)
        )
    ).all()
    overdue: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item_id, unit_id, title, deadline in overdue_rows:
        if deadline is None:
            continue
        overdue[unit_id].append(
            {
                "item_id": item_id,
                "title": title,
                "deadline": deadline.isoformat(),
                "days_overdue": (today - deadline).days,
            }
        )
    names = dict(
        (
            await session.execute(
                select(UnitRow.id, UnitRow.name).where(UnitRow.id.in_(list(by_unit)))
            )
        ).all()
    )
    out = []
    for unit_id in sorted(by_unit):
        st, tm = by_unit[unit_id]["status"], by_unit[unit_id]["timeliness"]
        out.append(
            AgencyReport(
                unit_id=unit_id,
                unit_name=names.get(unit_id),
                total=sum(st.values()),
                by_status=dict(st),
                by_timeliness=dict(tm),
                on_time_rate=_rate(tm),
                overdue=overdue.get(unit_id, []),
            )
        )
    return out


def _sum(reports: list[AgencyReport], attr: str) -> dict[str, int]:
    total: dict[str, int] = defaultdict(int)
    for r in reports:
        for k, v in getattr(r, attr).items():
            total[k] += v
    return dict(total)


def _scope(principal: Principal) -> list[ColumnElement[bool]]:
    if principal.sees_all_units:
        return []
    return [Item.lead_unit_id == (principal.unit_id or "")]


@router.get(
    "/reports/conclusions/{conclusion_id}",
    summary="Progress of one conclusion",
    response_model=ConclusionReport,
    responses=problem_responses(401, 404),
)
async def conclusion_report(
    conclusion_id: str, session: SessionDep, principal: Reader
) -> ConclusionReport:
    if await session.get(Conclusion, conclusion_id) is None:
        raise NotFound("conclusion not found")
    if not principal.sees_all_units:  # seen like the conclusion itself: through its items
        visible = await session.scalar(
            select(Item.id)
            .where(
                Item.conclusion_id == conclusion_id, repo.visible_to_unit(principal.unit_id or "")
            )
            .limit(1)
        )
        if visible is None:
            raise NotFound("conclusion not found")
    today = today_vn(repo.utcnow())
    agencies = await _agency_reports(
        session, [Item.conclusion_id == conclusion_id, *_scope(principal)], today
    )
    by_status = _sum(agencies, "by_status")
    total = sum(by_status.values())
    done = by_status.get("accepted", 0)
    return ConclusionReport(
        conclusion_id=conclusion_id,
        total=total,
        by_status=by_status,
        by_timeliness=_sum(agencies, "by_timeliness"),
        percent_done=round(100 * done / total, 2) if total else 0.0,
        agencies=agencies,
    )


@router.get(
    "/reports/agencies",
    summary="Per-agency counts by status and timeliness, on-time rate, overdue list",
    response_model=list[AgencyReport],
    responses=problem_responses(401),
)
async def agency_report(
    session: SessionDep,
    principal: Reader,
    conclusion_id: str | None = None,
    deadline_from: Day | None = None,
    deadline_to: Day | None = None,
) -> list[AgencyReport]:
    clauses = _scope(principal)
    if conclusion_id:
        clauses.append(Item.conclusion_id == conclusion_id)
    if deadline_from:
        clauses.append(Item.deadline >= deadline_from)
    if deadline_to:
        clauses.append(Item.deadline <= deadline_to)
    return await _agency_reports(session, clauses, today_vn(repo.utcnow()))


@router.get(
    "/reports/province",
    summary="Province summary",
    response_model=ProvinceReport,
    responses=problem_responses(401),
)
async def province_report(session: SessionDep, principal: Reader) -> ProvinceReport:
    today = today_vn(repo.utcnow())
    agencies = await _agency_reports(session, _scope(principal), today)
    by_t = _sum(agencies, "by_timeliness")
    by_s = _sum(agencies, "by_status")
    return ProvinceReport(
        as_of=today,
        total=sum(by_s.values()),
        by_status=by_s,
        by_timeliness=by_t,
        on_time_rate=_rate(by_t),
        agencies=agencies,
    )


HEADERS = [
    "Mã nhiệm vụ",
    "Nội dung",
    "Đơn vị chủ trì",
    "Đơn vị phối hợp",
    "Hạn xử lý",
    "Định kỳ",
    "Trạng thái",
    "Tình trạng thời hạn",
    "Tiêu chí thành phần",
    "Tiến độ (%)",
    "Mã kết luận",
]
STATUS_VI = {
    "not_started": "Chưa thực hiện",
    "in_progress": "Đang thực hiện",
    "reported": "Đã báo cáo, chờ xác nhận",
    "accepted": "Đã hoàn thành",
    "cancelled": "Đã hủy",
}
TIMELINESS_VI = {
    "done_on_time": "Hoàn thành đúng hạn",
    "done_late": "Hoàn thành quá hạn",
    "in_progress_within_time": "Đang thực hiện trong hạn",
    "due_soon": "Sắp đến hạn",
    "overdue": "Quá hạn",
    "no_deadline": "Không có thời hạn",
    "cancelled": "Đã hủy",
}


@router.get(
    "/exports/items",
    summary="Export items as CSV or XLSX (Vietnamese headers)",
    response_class=Response,
    responses={**download_responses(CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE), **problem_responses(401)},
)
async def export_items(
    session: SessionDep,
    principal: Reader,
    format: Literal["csv", "xlsx"] = Query("csv"),
    conclusion_id: str | None = None,
    unit_id: str | None = None,
) -> Response:
    now = repo.utcnow()
    today = today_vn(now)
    clauses = _scope(principal)
    if conclusion_id:
        clauses.append(Item.conclusion_id == conclusion_id)
    if unit_id:
        clauses.append(Item.lead_unit_id == unit_id)
    tl_expr = repo.timeliness_expr(today)
    rows = (
        await session.execute(
            select(Item, tl_expr.label("t"))
            .where(*clauses)
            .order_by(Item.lead_unit_id, Item.deadline.nulls_last(), Item.id)
        )
    ).all()
    names = dict((await session.execute(select(UnitRow.id, UnitRow.name))).all())
    table = [
        [
            item.id,
            item.title,
            names.get(item.lead_unit_id, item.lead_unit_id),
            "; ".join(names.get(u, u) for u in item.supporting_unit_ids or []),
            item.deadline.strftime("%d/%m/%Y") if item.deadline else "",
            item.recurrence or "",
            STATUS_VI.get(item.status, item.status),
            TIMELINESS_VI.get(t, t),
            ", ".join(item.criteria or []),
            item.progress_percent,
            item.conclusion_id or "",
        ]
        for item, t in rows
    ]
    stamp = today.strftime("%Y%m%d")
    if format == "xlsx":
        return xlsx_response(HEADERS, table, f"nhiem-vu-{stamp}.xlsx", sheet="Nhiệm vụ khắc phục")
    return csv_response(HEADERS, table, f"nhiem-vu-{stamp}.csv")
