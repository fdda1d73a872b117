"""CSV and XLSX reports laid out as officials use them: one row per agency, Vietnamese headers,
group columns, total, rank."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from services.scoring.api.scores import DEFAULT_PROFILE, parse_period, resolve_profile
from services.scoring.domain.profile import Profile
from services.scoring.store import snapshots as snap
from shared.app import SessionDep
from shared.auth import Principal, current_principal
from shared.problems import problem_responses

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])

LEVEL_VI = {"province": "Tỉnh, thành phố", "department": "Sở, ban, ngành",
            "district": "Huyện, thị xã, thành phố", "commune": "Xã, phường, đặc khu"}  # fmt: skip


def _num(x: float | None) -> float | str:
    return "" if x is None else round(x, 2)


def table(profile: Profile, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    headers = ["STT", "Mã đơn vị", "Tên cơ quan, đơn vị", "Cấp"]
    headers += [f"{g.name} ({g.max:g})" for g in profile.groups]
    headers += [f"Tổng điểm ({profile.max_total:g})", "Xếp hạng", "Tăng/giảm bậc"]
    body: list[list[Any]] = []
    for i, r in enumerate(rows, 1):
        change = (
            r["previous_rank"] - r["rank"]
            if r["rank"] is not None and r["previous_rank"] is not None
            else ""
        )
        body.append(
            [i, r["unit_id"], r["name"], LEVEL_VI.get(r["level"], r["level"])]
            + [_num((r["groups"].get(g.id) or {}).get("points")) for g in profile.groups]
            + [_num(r["total"]), r["rank"] if r["rank"] is not None else "", change]
        )
    return headers, body


async def _rows(session: Any, principal: Principal, period: str, level: str | None,
                under: str | None, profile: Profile) -> list[dict[str, Any]]:  # fmt: skip
    rows = await snap.list_rankings(session, period, profile.key, level, under)
    scope = principal.unit_scope()
    return [r for r in rows if not scope or r["unit_id"] == scope]


@router.get("/rankings.csv", responses=problem_responses(400, 401, 404))
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
    buf = io.StringIO()
    buf.write("\ufeff")  # Excel opens UTF-8 Vietnamese correctly with a BOM
    w = csv.writer(buf)
    w.writerow(headers)
    w.writerows(body)
    return Response(
        buf.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="xep-hang-766-{p.id}.csv"'},
    )


@router.get("/rankings.xlsx", responses=problem_responses(400, 401, 404))
async def rankings_xlsx(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    period: str = Query(examples=["2026Q3"]),
    level: str | None = None,
    under: str | None = None,
    profile: str = DEFAULT_PROFILE,
) -> Response:
    p, prof = parse_period(period), resolve_profile(profile)
    headers, body = table(prof, await _rows(session, principal, p.id, level, under, prof))
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = f"Kỳ {p.id}"
    title = f"KẾT QUẢ ĐÁNH GIÁ BỘ CHỈ SỐ 766 — KỲ {p.id}"
    ws.append([title])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(headers))
    ws["A1"].font = Font(bold=True, size=13)
    ws["A1"].alignment = Alignment(horizontal="center")
    ws.append([f"Phương pháp: {prof.name} ({prof.key})"])
    ws.append(headers)
    for cell in ws[3]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="center", horizontal="center")
    for row in body:
        ws.append(row)
    ws.column_dimensions["C"].width = 40
    ws.freeze_panes = "D4"
    buf = io.BytesIO()
    wb.save(buf)
    return Response(
        buf.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="xep-hang-766-{p.id}.xlsx"'},
    )
