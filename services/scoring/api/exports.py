"""CSV, XLSX and PDF reports laid out as officials use them: one row per agency, Vietnamese
headers, group columns, total, rank within the agency's peer group (as the rankings screen
shows it), the period and methodology in words, and the date the data is as of."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.scoring.api.scores import DEFAULT_PROFILE, parse_period, resolve_profile
from services.scoring.domain.periods import Period, vn_today
from services.scoring.domain.profile import Profile
from services.scoring.store import snapshots as snap
from shared.app import SessionDep
from shared.auth import Principal, current_principal
from shared.exports import (
    PDF_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    ReportHeader,
    csv_response,
    pdf_file,
    xlsx_file,
)
from shared.problems import problem_responses

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

LEVEL_VI = {"province": "Tỉnh, thành phố", "department": "Sở, ban, ngành",
            "district": "Huyện, thị xã, thành phố", "commune": "Xã, phường, đặc khu"}  # fmt: skip
ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def period_words(p: Period) -> str:
    """`2026Q3` → "Quý III năm 2026", the way a report's title names its period."""
    if p.kind == "year":
        return f"Năm {p.year}"
    if p.kind == "quarter":
        return f"Quý {ROMAN[p.last_month // 3]} năm {p.year}"
    if p.kind == "month":
        return f"Tháng {p.last_month:02d} năm {p.year}"
    return f"Từ tháng 01 đến tháng {p.last_month:02d} năm {p.year}"


def _num(x: float | None) -> float | str:
    return "" if x is None else round(x, 2)


def _peer_words(r: dict[str, Any]) -> str:
    level = LEVEL_VI.get(r["level"], r["level"])
    kind = str(r.get("kind") or "")
    peers = r.get("peers")
    label = level if not kind or kind.lower() in level.lower() else f"{level} ({kind})"
    return f"{label}, {peers} đơn vị" if peers else label


def table(profile: Profile, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    headers = ["STT", "Tên cơ quan, đơn vị", "Nhóm xếp hạng"]
    headers += [f"{g.name} (tối đa {g.max:g})" for g in profile.groups]
    headers += [f"Tổng điểm (tối đa {profile.max_total:g})", "Xếp hạng trong nhóm",
                "Thay đổi thứ hạng so với kỳ trước"]  # fmt: skip
    body: list[list[Any]] = []
    for i, r in enumerate(rows, 1):
        rank, prev = r.get("rank"), r.get("previous_rank")
        change = ""
        if rank is not None and prev is not None:
            d = prev - rank
            change = f"Tăng {d} bậc" if d > 0 else f"Giảm {-d} bậc" if d < 0 else "Giữ nguyên"
        peers = r.get("peers")
        shown_rank = "" if rank is None else f"{rank}/{peers}" if peers else rank
        points = r.get("group_points") or {
            k: (v or {}).get("points") for k, v in (r.get("groups") or {}).items()
        }
        body.append(
            [i, r["name"], _peer_words(r)]
            + [_num(points.get(g.id)) for g in profile.groups]
            + [_num(r["total"]), shown_rank, change]
        )
    return headers, body


async def _rows(session: AsyncSession, principal: Principal, period: str, level: str | None,
                under: str | None, profile: Profile) -> list[dict[str, Any]]:  # fmt: skip
    rows = await snap.list_rankings(session, period, profile.key, level, under)
    scope = principal.unit_scope()
    return [r for r in rows if not scope or r["unit_id"] == scope]


async def report_header(
    session: AsyncSession, p: Period, prof: Profile, level: str | None, under: str | None,
    rows: list[dict[str, Any]],
) -> ReportHeader:  # fmt: skip
    """Issuing body and place from the province the report is about; the data's as-of time is
    the newest computation among the rows' snapshots."""
    province = None
    if under:
        province = (await session.execute(
            text("""SELECT p.name FROM scoring.units u
                    JOIN scoring.units p ON p.id = split_part(u.path, '/', 2)
                    WHERE u.id = :u"""), {"u": under},
        )).scalar()  # fmt: skip
    as_of = (await session.execute(
        text("""SELECT max(computed_at) FROM scoring.snapshots
                WHERE period = :p AND profile = :profile
                  AND unit_id = ANY(CAST(:ids AS text[]))"""),
        {"p": p.id, "profile": prof.key, "ids": [r["unit_id"] for r in rows]},
    )).scalar()  # fmt: skip
    place = None
    if province:
        for prefix in ("Tỉnh ", "Thành phố "):
            if province.startswith(prefix):
                place = province[len(prefix) :]
    scope = LEVEL_VI.get(level or "", "Tất cả các cấp")
    return ReportHeader(
        title=f"Kết quả đánh giá Bộ chỉ số phục vụ người dân, doanh nghiệp — {period_words(p)}",
        parent_issuer=f"UBND {province}" if province else None,
        issuer="Sở Nội vụ",
        place=place,
        issued_on=vn_today(),
        lines=[
            f"Cấp đánh giá: {scope}" + (f" — {province}" if province else ""),
            f"Phương pháp: {prof.name}, phiên bản {prof.version}",
        ],
        data_as_of=as_of if isinstance(as_of, datetime) else None,
    )


def _file(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        200: {"description": what, "content": {media_type: binary}},
        **problem_responses(400, 401, 404, 503),
    }


@router.get("/rankings.csv", response_class=Response,
            responses=_file("text/csv", "Bảng xếp hạng (CSV, UTF-8 with BOM)"))  # fmt: skip
async def rankings_csv(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    period: str = Query(examples=["2026Q3"]),
    level: str | None = None,
    under: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> Response:
    p, prof = parse_period(period), resolve_profile(profile)
    headers, body = table(prof, await _rows(session, principal, p.id, level, under, prof))
    return csv_response(headers, body, f"xep-hang-766-{p.id}.csv")


async def _printable(
    session: AsyncSession, principal: Principal, period: str, level: str | None,
    under: str | None, profile: str,
) -> tuple[list[str], list[list[Any]], dict[str, Any], str]:  # fmt: skip
    p, prof = parse_period(period), resolve_profile(profile)
    rows = await _rows(session, principal, p.id, level, under, prof)
    headers, body = table(prof, rows)
    header = await report_header(session, p, prof, level, under, rows)
    layout = {"sheet": f"Kỳ {p.id}", "header": header, "freeze_columns": 2}
    return headers, body, layout, f"xep-hang-766-{p.id}"


@router.get("/rankings.xlsx", response_class=Response,
            responses=_file(XLSX_MEDIA_TYPE, "Báo cáo xếp hạng in được (XLSX)"))  # fmt: skip
async def rankings_xlsx(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    period: str = Query(examples=["2026Q3"]),
    level: str | None = None,
    under: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> Response:
    """The rankings as a printable workbook (A4 landscape, built in a worker thread)."""
    headers, body, layout, name = await _printable(session, principal, period, level, under,
                                                   profile)  # fmt: skip
    return await xlsx_file(headers, body, f"{name}.xlsx", **layout)


@router.get("/rankings.pdf", response_class=Response,
            responses=_file(PDF_MEDIA_TYPE, "Báo cáo xếp hạng (PDF, A4 ngang)"))  # fmt: skip
async def rankings_pdf(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    period: str = Query(examples=["2026Q3"]),
    level: str | None = None,
    under: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> Response:
    """The same report as PDF (LibreOffice headless in a subprocess; 503 without it)."""
    headers, body, layout, name = await _printable(session, principal, period, level, under,
                                                   profile)  # fmt: skip
    return await pdf_file(headers, body, f"{name}.pdf", **layout)
