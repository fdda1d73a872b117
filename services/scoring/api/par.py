"""PAR INDEX per unit and year: metric-derived points plus inspectors' entries with evidence."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import text

from services.scoring.api.scores import DEFAULT_PROFILE
from services.scoring.domain.par_index import InspectorEntry, framework_for, score_par
from services.scoring.domain.periods import vn_today
from services.scoring.recompute import default_profile
from services.scoring.store import snapshots as snap
from shared.app import SessionDep
from shared.auth import Principal, Role, current_principal, require_roles
from shared.bounds import Year
from shared.problems import NotFound, UnprocessableContent, problem_responses

router = APIRouter(prefix="/api/v1/units/{unit_id}/par", tags=["scores"])


class EntryIn(BaseModel):
    points: float = Field(ge=0, examples=[0.5])
    evidence: str = Field(min_length=3, examples=["Biên bản kiểm tra số 05/TB-ĐKT"])


def _framework(year: int) -> Any:
    try:
        return framework_for(year)
    except FileNotFoundError as e:
        raise NotFound(str(e)) from e


@router.put("/{year}/entries/{code}", responses=problem_responses(401, 403, 404, 422))
async def put_par_entry(
    unit_id: str,
    year: Year,
    code: str,
    body: EntryIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.admin, Role.inspector))],
) -> dict[str, Any]:
    """Enter (or correct) an inspector-scored component criterion; points ≤ its max."""
    fw = _framework(year)
    entry = InspectorEntry(code=code, points=body.points, evidence=body.evidence,
                           entered_by=principal.subject)  # fmt: skip
    try:
        score_par(fw, {}, {code: entry})
    except ValueError as e:
        raise UnprocessableContent(str(e)) from e
    await session.execute(
        text("""
        INSERT INTO scoring.par_entries (unit_id, year, code, points, evidence, entered_by)
        VALUES (:u, :y, :c, :p, :e, :by)
        ON CONFLICT (unit_id, year, code) DO UPDATE SET points = excluded.points,
            evidence = excluded.evidence, entered_by = excluded.entered_by, entered_at = now()
        """),
        {"u": unit_id, "y": year, "c": code, "p": body.points, "e": body.evidence,
         "by": principal.subject},
    )  # fmt: skip
    return {"unit_id": unit_id, "year": year, **entry.model_dump()}


@router.get("/{year}", responses=problem_responses(401, 404))
async def get_par(
    unit_id: str,
    year: Year,
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    """The unit's PAR INDEX tree for a year: each node's points capped at its max; metric
    leaves from the year's 766 snapshot and remediation shares, the rest from inspectors."""
    principal.ensure_unit(unit_id, "unit")
    fw = _framework(year)
    doc = await snap.get_snapshot(session, unit_id, str(year), DEFAULT_PROFILE)
    metrics: dict[str, float | None] = {}
    if doc:
        metrics.update({k: v["ratio"] for k, v in doc["indicators"].items()})
        # frameworks name indicators of earlier profile versions: the profile says which of
        # its own stands for each (766@2: pay_online → pay_dossiers)
        for old, new in default_profile().aliases.items():
            metrics.setdefault(old, metrics.get(new))
    rem = (await snap.remediation_share(session, [unit_id], vn_today())).get(unit_id, {})
    metrics["remediation_handled"] = rem.get("handled_share")
    metrics["inspection_coverage"] = await snap.inspection_coverage(session, unit_id, year)
    rows = (await session.execute(
        text("SELECT code, points, evidence, entered_by FROM scoring.par_entries "
             "WHERE unit_id = :u AND year = :y"), {"u": unit_id, "y": year},
    )).mappings().all()  # fmt: skip
    known = {n.code for n in fw.leaves() if n.source == "inspector"}
    entries = {r["code"]: InspectorEntry(**r) for r in rows if r["code"] in known}
    result = score_par(fw, metrics, entries)
    return {"unit_id": unit_id, "year": year, "framework": fw.id, "decision": fw.decision,
            "tree": asdict(result)}  # fmt: skip
