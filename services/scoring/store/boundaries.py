"""Stored boundary documents (GeoJSON FeatureCollections) per unit."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def put(session: AsyncSession, unit_id: str, collection: dict[str, Any], by: str) -> None:
    await session.execute(
        text("""
        INSERT INTO scoring.unit_boundaries (unit_id, features, feature_count, uploaded_by)
        VALUES (:u, CAST(:f AS jsonb), :n, :by)
        ON CONFLICT (unit_id) DO UPDATE SET features = excluded.features,
            feature_count = excluded.feature_count, uploaded_by = excluded.uploaded_by,
            uploaded_at = now()
        """),
        {"u": unit_id, "f": json.dumps(collection, ensure_ascii=False),
         "n": len(collection["features"]), "by": by},
    )  # fmt: skip


async def get(session: AsyncSession, unit_id: str) -> dict[str, Any] | None:
    row = (await session.execute(
        text("""SELECT CAST(features AS text) AS f, uploaded_at FROM scoring.unit_boundaries
                WHERE unit_id = :u"""), {"u": unit_id},
    )).first()  # fmt: skip
    if row is None:
        return None
    doc: dict[str, Any] = json.loads(row.f)
    doc["uploaded_at"] = row.uploaded_at.isoformat()
    return doc


async def known_units(session: AsyncSession, ids: list[str]) -> set[str]:
    rows = await session.execute(
        text("SELECT id FROM scoring.units WHERE id = ANY(CAST(:ids AS text[]))"), {"ids": ids}
    )
    return {r for (r,) in rows.all()}
