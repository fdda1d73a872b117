"""CSV and XLSX reports laid out as officials use them: one row per agency, Vietnamese headers,
group columns, total, rank."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from services.scoring.api.scores import DEFAULT_PROFILE, parse_period, resolve_profile
from services.scoring.domain.profile import Profile
from services.scoring.store import snapshots as snap
from shared.app import CSV_MEDIA_TYPE, SessionDep, download_responses
from shared.auth import Principal, current_principal
from shared.exports import XLSX_MEDIA_TYPE, csv_response, xlsx_response
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


@router.get(
    "/rankings.csv",
    response_class=Response,
    responses={**download_responses(CSV_MEDIA_TYPE), **problem_responses(400, 401, 404)},
)
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


@router.get(
    "/rankings.xlsx",
    response_class=Response,
    responses={**download_responses(XLSX_MEDIA_TYPE), **problem_responses(400, 401, 404)},
)
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
    return xlsx_response(
        headers, body, f"xep-hang-766-{p.id}.xlsx", sheet=f"Kỳ {p.id}",
        title=f"KẾT QUẢ ĐÁNH GIÁ BỘ CHỈ SỐ 766 — KỲ {p.id}",
        subtitle=f"Phương pháp: {prof.name} ({prof.key})", freeze_columns=3, widths={3: 40},
    )  # fmt: skip
