"""Unit registry endpoints: list, one unit with lineage, CSV/JSON import and export."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import text

from services.scoring.store import registry
from services.scoring.store.facts_store import enqueue_stale
from services.scoring.store.registry import LineageIn, UnitIn, parse_units_csv, units_csv
from shared.app import CSV_MEDIA_TYPE, SessionDep, download_responses
from shared.auth import Principal, Role, current_principal, require_roles
from shared.bounds import Day
from shared.problems import BadRequest, NotFound, UnprocessableContent, problem_responses

router = APIRouter(prefix="/api/v1/units", tags=["units"])


class Unit(BaseModel):
    id: str = Field(examples=["P21.SNV"])
    name: str = Field(examples=["Sở Nội vụ"])
    level: str = Field(examples=["department"])
    kind: str = Field(examples=["sở"])
    parent_id: str | None = Field(default=None, examples=["P21"])
    valid_from: date
    valid_to: date | None = None
    path: str = Field(examples=["/P21/P21.SNV/"])
    aliases: list[str] = []
    external_codes: dict[str, str] = Field(
        default_factory=dict, examples=[{"demo-igate": "000.02.00.H33"}]
    )


class LineageEdge(BaseModel):
    from_id: str
    to_id: str
    kind: str
    effective_on: date
    weight: float = Field(default=1.0, description="Share of from_id's figures to_id takes.")
    carries: str = Field(default="subtree", examples=["self"])
    weight_source: str = Field(default="derived", examples=["official"])


class WeightsIn(BaseModel):
    """An official's weights for a unit's successors (Ủy ban nhân dân tỉnh's decision on how an
    old ward's figures split), replacing the ward-count shares of the shipped data."""

    weights: dict[str, float] = Field(examples=[{"P33.W32025": 0.7, "P33.W32041": 0.3}])
    note: str | None = Field(default=None, max_length=500, examples=["Theo diện tích tự nhiên"])


class UnitDetail(Unit):
    predecessors: list[LineageEdge] = []
    successors: list[LineageEdge] = []


class ImportResult(BaseModel):
    imported: int


class UnitsImport(BaseModel):
    units: list[UnitIn]
    lineage: list[LineageIn] = []


@router.get("", response_model=list[Unit], responses=problem_responses(401))
async def list_units(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    under: str | None = Query(default=None, description="Only this unit's subtree."),
    level: str | None = Query(default=None, examples=["commune"]),
    on: Day | None = Query(default=None, description="Only units valid on this date."),
    q: str | None = Query(
        default=None,
        max_length=200,
        description="Name or alias contains this, accent- and case-insensitively.",
        examples=["phuong hoan kiem"],
    ),
    code: str | None = Query(
        default=None,
        max_length=100,
        description="Any external code (GSO, the national portal's, a source's, …).",
        examples=["00070"],
    ),
) -> list[dict[str, Any]]:
    scope = principal.unit_scope()
    ids = [scope] if scope else None
    if q:
        # names and aliases of the candidates only, folded here (no unaccent in PostgreSQL
        # needed), then the full rows of the matches
        ids = await registry.search_names(
            session, q, under=under, level=level, on=on, ids=ids, code=code
        )
    return await registry.list_units(session, under=under, level=level, on=on, ids=ids, code=code)


@router.get(
    "/export",
    response_class=Response,
    responses={
        200: {
            "description": "The registry as CSV (default) or JSON",
            "content": {
                **download_responses(CSV_MEDIA_TYPE)[200]["content"],
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Unit"}}
                },
            },
        },
        **problem_responses(401),
    },
)
async def export_units(
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
    format: str = Query(default="csv", pattern="^(csv|json)$"),
) -> Response:
    scope = principal.unit_scope()
    units = await registry.list_units(session, ids=[scope] if scope else None)
    if format == "json":
        body = json.dumps([Unit.model_validate(u).model_dump(mode="json") for u in units],
                          ensure_ascii=False)  # fmt: skip
        return Response(body, media_type="application/json")
    return Response(
        units_csv(units),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="units.csv"'},
    )


@router.post(
    "/import",
    response_model=ImportResult,
    responses=problem_responses(401, 403, 422),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": UnitsImport.model_json_schema()},
                "text/csv": {"schema": {"type": "string"}},
            }
        }
    },
)
async def import_units(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.admin))],
) -> ImportResult:
    """Upsert units (JSON `{units, lineage}` or CSV with the export's columns)."""
    try:
        body = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UnprocessableContent("the body is not valid UTF-8") from e
    try:
        if request.headers.get("content-type", "").startswith("text/csv"):
            data = UnitsImport(units=parse_units_csv(body))
        else:
            data = UnitsImport.model_validate_json(body)
    except ValidationError as e:
        raise UnprocessableContent(
            "the units do not match the schema",
            extra={"errors": e.errors(include_url=False, include_context=False,
                                      include_input=False)},
        ) from e  # fmt: skip
    except ValueError as e:
        raise UnprocessableContent(str(e)) from e
    try:
        n = await registry.import_units(session, data.units, data.lineage)
    except ValueError as e:  # the tree itself: a cycle, an unknown parent
        raise UnprocessableContent(str(e)) from e
    return ImportResult(imported=n)


@router.get("/{unit_id}", response_model=UnitDetail, responses=problem_responses(401, 404))
async def get_unit(
    unit_id: str,
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    principal.ensure_unit(unit_id, "unit")
    rows = await registry.list_units(session, ids=[unit_id])
    if not rows:
        raise NotFound("unit not found")
    edges = (await session.execute(
        text("""SELECT from_id, to_id, kind, effective_on, weight, carries, weight_source
                FROM scoring.unit_lineage
                WHERE from_id = :u OR to_id = :u ORDER BY effective_on, from_id, to_id"""),
        {"u": unit_id},
    )).mappings().all()  # fmt: skip
    return {
        **rows[0],
        "predecessors": [dict(e) for e in edges if e["to_id"] == unit_id],
        "successors": [dict(e) for e in edges if e["from_id"] == unit_id],
    }


@router.put(
    "/{unit_id}/successor-weights",
    response_model=list[LineageEdge],
    responses=problem_responses(400, 401, 403, 404),
)
async def set_successor_weights(
    unit_id: str,
    body: WeightsIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.admin))],
) -> list[dict[str, Any]]:
    """Set the weights of a unit's successor edges (official override). Every successor named
    must be one; afterwards the unit's weights must sum to 1. A re-seed keeps them; the
    successors' figures are recomputed through the stale queue."""
    edges = (await session.execute(
        text("SELECT to_id, weight FROM scoring.unit_lineage WHERE from_id = :u"), {"u": unit_id}
    )).mappings().all()  # fmt: skip
    if not edges:
        raise NotFound("unit has no successors")
    current = {e["to_id"]: e["weight"] for e in edges}
    unknown = sorted(set(body.weights) - set(current))
    if unknown:
        raise BadRequest(f"not successors of {unit_id}: {', '.join(unknown)}")
    if any(not 0 <= w <= 1 for w in body.weights.values()):
        raise BadRequest("weights must be between 0 and 1")
    total = sum({**current, **body.weights}.values())
    if abs(total - 1) > 1e-6:
        raise BadRequest(f"the successors' weights must sum to 1 (got {total:.6f})")
    await session.execute(
        text("""
        UPDATE scoring.unit_lineage l SET weight = r.weight, weight_source = 'official',
               weight_note = :note, weight_set_by = :who, weight_set_at = now()
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(to_id text, weight float8)
        WHERE l.from_id = :u AND l.to_id = r.to_id
        """),
        {
            "u": unit_id,
            "note": body.note,
            "who": principal.subject,
            "rows": json.dumps([{"to_id": k, "weight": v} for k, v in body.weights.items()]),
        },
    )
    # the successors' figures of the months the unit has facts in are recomputed (stale queue)
    months = await session.execute(
        text("""SELECT DISTINCT l.unit_id, l.month FROM scoring.leaf_flows l
                JOIN scoring.units d ON d.id = l.unit_id
                JOIN scoring.units u ON u.id = :u
                WHERE d.path LIKE u.path || '%'"""),
        {"u": unit_id},
    )
    await enqueue_stale(session, [(u, str(m)) for u, m in months.all()])
    rows = (await session.execute(
        text("""SELECT from_id, to_id, kind, effective_on, weight, carries, weight_source
                FROM scoring.unit_lineage WHERE from_id = :u ORDER BY to_id"""),
        {"u": unit_id},
    )).mappings().all()  # fmt: skip
    return [dict(r) for r in rows]
