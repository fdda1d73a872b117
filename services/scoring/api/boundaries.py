"""Boundaries of a province's units (GeoJSON), uploaded by an admin, read by the dashboard's
commune map."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.scoring.domain.geo import InvalidBoundaries, validate
from services.scoring.store import boundaries as store
from shared.app import SessionDep
from shared.auth import Principal, Role, current_principal, require_roles
from shared.problems import BadRequest, NotFound, problem_responses

router = APIRouter(prefix="/api/v1/units", tags=["units"])
MAX_BYTES = 32 * 1024 * 1024

_EXAMPLE = {
    "type": "FeatureCollection",
    "features": [{"type": "Feature", "properties": {"unit_id": "P21.X001", "name": "Xã A"},
                  "geometry": {"type": "Polygon", "coordinates": [[[106.0, 20.6], [106.1, 20.6],
                               [106.1, 20.7], [106.0, 20.6]]]}}],
}  # fmt: skip


@router.put(
    "/{unit_id}/boundaries",
    summary="Upload the boundaries of a unit's subunits (GeoJSON FeatureCollection)",
    responses=problem_responses(400, 401, 403, 404),
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/geo+json": {"schema": {"type": "object"}, "example": _EXAMPLE},
        "application/json": {"schema": {"type": "object"}}}}},
)  # fmt: skip
async def put_boundaries(
    unit_id: str,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require_roles(Role.admin))],
) -> dict[str, Any]:
    """Each feature is a Polygon or MultiPolygon with `properties.unit_id` naming a unit of the
    registry; the upload replaces the previous one."""
    body = await request.body()
    if len(body) > MAX_BYTES:
        raise BadRequest(f"boundaries larger than {MAX_BYTES // 2**20} MiB")
    try:
        doc = await asyncio.to_thread(lambda: validate(json.loads(body)))
    except (InvalidBoundaries, ValueError, RecursionError) as e:  # JSON errors are ValueErrors
        raise BadRequest(f"invalid boundaries: {e}") from e
    ids = [f["properties"]["unit_id"] for f in doc["features"]]
    known = await store.known_units(session, [unit_id, *ids])
    if unit_id not in known:
        raise NotFound("unit not found")
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise BadRequest(f"unknown unit ids: {', '.join(unknown[:20])}")
    await store.put(session, unit_id, doc, principal.subject)
    return {"unit_id": unit_id, "features": len(ids)}


@router.get(
    "/{unit_id}/boundaries",
    summary="The boundaries uploaded for a unit (GeoJSON FeatureCollection)",
    responses=problem_responses(401, 404),
)
async def get_boundaries(
    unit_id: str,
    session: SessionDep,
    principal: Annotated[Principal, Depends(current_principal)],
) -> dict[str, Any]:
    principal.ensure_unit(unit_id, "boundaries")
    doc = await store.get(session, unit_id)
    if doc is None:
        raise NotFound("no boundaries uploaded for this unit")
    return doc
