"""Progress reports and CSV / XLSX exports (Vietnamese headers)."""

from __future__ import annotations

from collections import Counter, defaultdict
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
from shared.app import SessionDep
from shared.auth.principal import Principal
from shared.auth.security import current_principal
from shared.bounds import Day
from shared.exports import (
    PDF_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    ReportHeader,
    csv_response,
    pdf_file,
    xlsx_file,
)
from shared.problems import NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["reports"])
Reader = Annotated[Principal, Depends(current_principal)]


_DUE = ("done_on_time", "done_late_extended", "done_late", "overdue")


def _rate(t: dict[str, int], *, extended: bool = False) -> float | None:
    """Share on time among the items that are due; `extended` judges by current deadlines
    (a late extension then counts), otherwise by the original ones."""
    due = sum(t.get(k, 0) for k in _DUE)
    on_time = t.get("done_on_time", 0) + (t.get("done_late_extended", 0) if extended else 0)
    return round(on_time / due, 4) if due else None


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
                on_time_rate_extended=_rate(tm, extended=True),
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
        on_time_rate_extended=_rate(by_t, extended=True),
        agencies=agencies,
    )


HEADERS = [
    "STT",
    "Nội dung nhiệm vụ",
    "Đơn vị chủ trì",
    "Đơn vị phối hợp",
    "Hạn xử lý",
    "Định kỳ",
    "Trạng thái",
    "Tình trạng thời hạn",
    "Tiêu chí thành phần",
    "Tiến độ (%)",
    "Văn bản kết luận",
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
    "done_late_extended": "Hoàn thành muộn (đã gia hạn)",
    "in_progress_within_time": "Đang thực hiện trong hạn",
    "due_soon": "Sắp đến hạn",
    "overdue": "Quá hạn",
    "no_deadline": "Không có thời hạn",
    "cancelled": "Đã hủy",
}
ROMAN = {"Q1": "quý I", "Q2": "quý II", "Q3": "quý III", "Q4": "quý IV", "H1": "6 tháng",
         "M9": "9 tháng", "year": "năm"}  # fmt: skip
RECURRENCE_VI = {"weekly": "Hằng tuần", "monthly": "Hằng tháng", "quarterly": "Hằng quý",
                 "half_yearly": "6 tháng một lần", "yearly": "Hằng năm"}  # fmt: skip


def recurrence_words(code: str | None) -> str:
    """The parser's recurrence code in the words of the dispatch ("hằng quý", not
    `quarterly`); an unknown code is shown as "Định kỳ" rather than as the code."""
    if not code:
        return ""
    kind, _, arg = code.partition(":")
    if kind in RECURRENCE_VI and not arg:
        return RECURRENCE_VI[kind]
    key, _, value = arg.partition("=")
    if kind == "monthly" and key == "days" and "-" in value:
        a, b = value.split("-", 1)
        return f"Từ ngày {int(a):02d} đến ngày {int(b):02d} hằng tháng"
    if kind == "monthly" and key == "by":
        return f"Trước ngày {int(value):02d} hằng tháng"
    if kind == "yearly" and key == "by" and "-" in value:
        month, day = value.split("-", 1)
        return f"Trước ngày {int(day):02d}/{int(month):02d} hằng năm"
    if kind == "reports":
        names = [ROMAN.get(c, c) for c in arg.split(",") if c]
        return "Báo cáo " + ", ".join(names) if names else "Báo cáo định kỳ"
    return "Định kỳ"


def timeliness_words(status: str, timeliness: str, deadline: date | None, today: date) -> str:
    """Timeliness that agrees with the status beside it: an item not (or no longer) accepted is
    not "done", however its completion stamp reads; an accepted one is never "in progress"."""
    open_ = status in {"not_started", "in_progress", "reported"}
    if open_ and timeliness in {"done_on_time", "done_late"}:
        if deadline is None:
            timeliness = "no_deadline"
        elif deadline < today:
            timeliness = "overdue"
        else:
            timeliness = "in_progress_within_time"
    if status == "accepted" and timeliness in {"in_progress_within_time", "due_soon"}:
        timeliness = "done_on_time"
    if status == "accepted" and timeliness == "overdue":
        timeliness = "done_late"
    return TIMELINESS_VI.get(timeliness, timeliness)


def _files(*media_types: str) -> dict[int | str, dict[str, Any]]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {"description": "The file (format=…)", "content": dict.fromkeys(media_types, binary)},
        **problem_responses(401, 503),
    }


async def _unit_names(session: AsyncSession) -> dict[str, str]:
    return dict((await session.execute(select(UnitRow.id, UnitRow.name))).all())


def _header(
    title: str, today: date, names: dict[str, str], unit_ids: list[str], lines: list[str]
) -> ReportHeader:
    """The issuing province is the one most of the report's agencies belong to (unit ids are
    paths under their province's id: `P21.SNV`)."""
    provinces = Counter(u.split(".", 1)[0] for u in unit_ids)
    top = provinces.most_common(1)[0][0] if provinces else None
    province = names.get(top) if top else None
    return ReportHeader(
        title=title,
        issuer="Sở Nội vụ",
        parent_issuer=f"UBND {province}" if province else None,
        place=province.removeprefix("Tỉnh ") if province else None,
        issued_on=today,
        lines=lines,
        data_as_of=repo.utcnow(),
    )


@router.get(
    "/exports/items",
    summary="Export items as CSV, XLSX or PDF (Vietnamese headers, printable)",
    response_class=Response,
    responses=_files("text/csv", XLSX_MEDIA_TYPE, PDF_MEDIA_TYPE),
)
async def export_items(
    session: SessionDep,
    principal: Reader,
    format: Literal["csv", "xlsx", "pdf"] = Query("csv"),
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
            select(Item, tl_expr.label("t"), Conclusion.number, Conclusion.title)
            .outerjoin(Conclusion, Conclusion.id == Item.conclusion_id)
            .where(*clauses)
            .order_by(Item.lead_unit_id, Item.deadline.nulls_last(), Item.id)
        )
    ).all()
    names = await _unit_names(session)
    table = [
        [
            n,
            item.title,
            names.get(item.lead_unit_id, item.lead_unit_id),
            "; ".join(names.get(u, u) for u in item.supporting_unit_ids or []),
            item.deadline.strftime("%d/%m/%Y") if item.deadline else "",
            recurrence_words(item.recurrence),
            STATUS_VI.get(item.status, item.status),
            timeliness_words(item.status, t, item.deadline, today),
            ", ".join(item.criteria or []),
            item.progress_percent,
            number or c_title or ("Cảnh báo tự động" if item.origin == "alert" else ""),
        ]
        for n, (item, t, number, c_title) in enumerate(rows, 1)
    ]
    stamp = today.strftime("%Y%m%d")
    if format == "csv":
        return csv_response(HEADERS, table, f"nhiem-vu-{stamp}.csv")
    layout: dict[str, Any] = {
        "sheet": "Nhiệm vụ khắc phục",
        "header": _header(
            "Danh sách nhiệm vụ khắc phục sau kiểm tra cải cách hành chính",
            today,
            names,
            [item.lead_unit_id for item, *_ in rows],
            [f"Tổng số: {len(table)} nhiệm vụ"],
        ),
        "freeze_columns": 2,
    }
    if format == "pdf":
        return await pdf_file(HEADERS, table, f"nhiem-vu-{stamp}.pdf", **layout)
    return await xlsx_file(HEADERS, table, f"nhiem-vu-{stamp}.xlsx", **layout)


PROVINCE_HEADERS = [
    "STT",
    "Đơn vị chủ trì",
    "Tổng số nhiệm vụ",
    "Chưa thực hiện",
    "Đang thực hiện",
    "Đã báo cáo, chờ xác nhận",
    "Đã hoàn thành",
    "Hoàn thành đúng hạn",
    "Hoàn thành quá hạn",
    "Đang quá hạn",
    "Tỷ lệ đúng hạn (%)",
]


def province_table(report: ProvinceReport) -> list[list[Any]]:
    def line(n: Any, name: str, total: int, st: dict[str, int], tm: dict[str, int],
             rate: float | None) -> list[Any]:  # fmt: skip
        return [n, name, total, st.get("not_started", 0), st.get("in_progress", 0),
                st.get("reported", 0), st.get("accepted", 0), tm.get("done_on_time", 0),
                tm.get("done_late", 0), tm.get("overdue", 0),
                "" if rate is None else round(100 * rate, 1)]  # fmt: skip

    body = [
        line(i, a.unit_name or a.unit_id, a.total, a.by_status, a.by_timeliness, a.on_time_rate)
        for i, a in enumerate(report.agencies, 1)
    ]
    body.append(line("", "Toàn tỉnh", report.total, report.by_status, report.by_timeliness,
                     report.on_time_rate))  # fmt: skip
    return body


@router.get(
    "/exports/province-report",
    summary="The province report (per-agency progress) as XLSX or PDF, printable",
    response_class=Response,
    responses=_files(XLSX_MEDIA_TYPE, PDF_MEDIA_TYPE),
)
async def export_province_report(
    session: SessionDep,
    principal: Reader,
    format: Literal["xlsx", "pdf"] = Query("xlsx"),
) -> Response:
    report = await province_report(session, principal)
    names = await _unit_names(session)
    table = province_table(report)
    stamp = report.as_of.strftime("%Y%m%d")
    layout: dict[str, Any] = {
        "sheet": "Báo cáo tiến độ",
        "header": _header(
            "Báo cáo tiến độ thực hiện nhiệm vụ khắc phục sau kiểm tra cải cách hành chính",
            report.as_of,
            names,
            [a.unit_id for a in report.agencies],
            [f"Tính đến {report.as_of.strftime('%d/%m/%Y')}"],
        ),
        "freeze_columns": 2,
    }
    if format == "pdf":
        return await pdf_file(PROVINCE_HEADERS, table, f"bao-cao-tien-do-{stamp}.pdf", **layout)
    return await xlsx_file(PROVINCE_HEADERS, table, f"bao-cao-tien-do-{stamp}.xlsx", **layout)
