"""Effective-dated unit registry with materialised paths, lineage edges and external codes.

`path` is `/root/…/id/`, so a subtree is one `path LIKE '/P21/%'`. Aggregation of a unit also
takes in the subtrees of units `merged_into` it (transitively), so a merged unit's pre-merger
periods are sums of its predecessors. `split_into` edges are many-to-many and carry no weights:
they are kept for lineage display but never summed (a commune does not inherit part of a
district's history).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bounds import Day

SEED_PATH = Path(__file__).resolve().parents[3] / "shared" / "reference" / "units.json"


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str
    level: str
    kind: str
    parent_id: str | None = None
    valid_from: Day
    valid_to: Day | None = None
    aliases: list[str] = Field(default_factory=list)
    external_codes: dict[str, str] = Field(default_factory=dict)


class LineageIn(BaseModel):
    from_id: str
    to_id: str
    kind: str
    effective_on: Day


def compute_paths(units: Sequence[UnitIn]) -> dict[str, str]:
    by_id = {u.id: u for u in units}
    paths: dict[str, str] = {}

    def path(uid: str, seen: frozenset[str] = frozenset()) -> str:
        if uid in paths:
            return paths[uid]
        if uid in seen:
            raise ValueError(f"cycle in the unit tree at {uid}")
        u = by_id[uid]
        if u.parent_id is None:
            p = f"/{uid}/"
        elif u.parent_id not in by_id:
            raise ValueError(f"{uid}: unknown parent {u.parent_id}")
        else:
            p = f"{path(u.parent_id, seen | {uid})}{uid}/"
        paths[uid] = p
        return p

    for u in units:
        path(u.id)
    return paths


async def import_units(
    session: AsyncSession, units: Sequence[UnitIn], lineage: Sequence[LineageIn] = ()
) -> int:
    """Upsert units (paths recomputed), their external codes and lineage: one statement each.
    A unit or lineage edge twice in one import raises ValueError (one upsert cannot take both)."""
    ids = [u.id for u in units]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"units listed twice: {', '.join(repr(i) for i in twice)}")
    edges = [(e.from_id, e.to_id, e.kind) for e in lineage]
    if len(set(edges)) != len(edges):
        raise ValueError("a lineage edge is listed twice")
    existing = (await session.execute(text(
        "SELECT id, name, level, kind, parent_id, valid_from, valid_to FROM scoring.units"
    ))).mappings().all()  # fmt: skip
    merged = {r["id"]: UnitIn(**r) for r in existing}
    merged.update({u.id: u for u in units})
    paths = compute_paths(list(merged.values()))
    rows = [
        {**u.model_dump(mode="json", exclude={"external_codes"}), "path": paths[u.id]}
        for u in units
    ]
    # parents first so the foreign key holds inside the statement
    rows.sort(key=lambda r: r["path"].count("/"))
    await session.execute(
        text("""
        INSERT INTO scoring.units (id, name, level, kind, parent_id, valid_from, valid_to,
                                   aliases, path)
        SELECT id, name, level, kind, parent_id, valid_from, valid_to, aliases, path
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            id text, name text, level text, kind text, parent_id text, valid_from date,
            valid_to date, aliases jsonb, path text)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, level = excluded.level,
            kind = excluded.kind, parent_id = excluded.parent_id,
            valid_from = excluded.valid_from, valid_to = excluded.valid_to,
            aliases = excluded.aliases, path = excluded.path
        """),
        {"rows": json.dumps(rows)},
    )
    # a moved unit moves its subtree: refresh every path (cheap: thousands of rows)
    await session.execute(
        text("""
        UPDATE scoring.units u SET path = r.path
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id text, path text)
        WHERE u.id = r.id AND u.path <> r.path
        """),
        {"rows": json.dumps([{"id": k, "path": v} for k, v in paths.items()])},
    )
    codes = [
        {"source": s, "code": c, "unit_id": u.id}
        for u in units
        for s, c in u.external_codes.items()
    ]
    if codes:
        await session.execute(
            text("""
            INSERT INTO scoring.unit_external_codes (source, code, unit_id)
            SELECT source, code, unit_id
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(source text, code text, unit_id text)
            ON CONFLICT (source, code) DO UPDATE SET unit_id = excluded.unit_id
            """),
            {"rows": json.dumps(codes)},
        )
    if lineage:
        await session.execute(
            text("""
            INSERT INTO scoring.unit_lineage (from_id, to_id, kind, effective_on)
            SELECT from_id, to_id, kind, effective_on
            FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                 AS r(from_id text, to_id text, kind text, effective_on date)
            ON CONFLICT (from_id, to_id, kind) DO UPDATE SET effective_on = excluded.effective_on
            """),
            {"rows": json.dumps([e.model_dump(mode="json") for e in lineage])},
        )
    return len(rows)


def load_seed(path: Path = SEED_PATH) -> tuple[list[UnitIn], list[LineageIn]]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return (
        [UnitIn.model_validate(u) for u in raw["units"]],
        [LineageIn.model_validate(e) for e in raw.get("lineage", [])],
    )


async def seed_units(session: AsyncSession, path: Path = SEED_PATH) -> int:
    units, lineage = load_seed(path)
    return await import_units(session, units, lineage)


CSV_FIELDS = ("id", "name", "level", "kind", "parent_id", "valid_from", "valid_to", "aliases",
              "external_codes")  # fmt: skip


REQUIRED_CSV_FIELDS = ("id", "name", "level", "kind", "valid_from")


def parse_units_csv(data: str) -> list[UnitIn]:
    """CSV with CSV_FIELDS headers; aliases `;`-separated, external codes `source=code;…`.
    A missing required column, a short row or a bad date raises ValueError naming the line."""
    out: list[UnitIn] = []
    reader = csv.DictReader(io.StringIO(data))
    missing = [f for f in REQUIRED_CSV_FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"the CSV has no {', '.join(missing)} column")
    for line, row in enumerate(reader, start=2):
        cells = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        empty = [f for f in REQUIRED_CSV_FIELDS if not cells.get(f)]
        if empty:
            raise ValueError(f"line {line}: no {', '.join(empty)}")
        codes = dict(
            part.split("=", 1) for part in cells.get("external_codes", "").split(";") if "=" in part
        )
        try:
            out.append(
                UnitIn(
                    id=cells["id"],
                    name=cells["name"],
                    level=cells["level"],
                    kind=cells["kind"],
                    parent_id=cells.get("parent_id") or None,
                    valid_from=cells["valid_from"],
                    valid_to=cells.get("valid_to") or None,
                    aliases=[a for a in cells.get("aliases", "").split(";") if a],
                    external_codes=codes,
                )
            )
        except ValueError as exc:  # pydantic's ValidationError is one
            raise ValueError(f"line {line}: {exc}") from exc
    return out


async def list_units(
    session: AsyncSession,
    *,
    under: str | None = None,
    level: str | None = None,
    on: date | None = None,
    ids: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    rows = (await session.execute(
        text("""
        SELECT u.id, u.name, u.level, u.kind, u.parent_id, u.valid_from, u.valid_to, u.path,
               u.aliases,
               COALESCE((SELECT jsonb_object_agg(c.source, c.code)
                         FROM scoring.unit_external_codes c WHERE c.unit_id = u.id), '{}')
                 AS external_codes
        FROM scoring.units u
        WHERE (CAST(:under AS text) IS NULL OR u.path LIKE (
                  SELECT p.path FROM scoring.units p WHERE p.id = :under) || '%')
          AND (CAST(:level AS text) IS NULL OR u.level = :level)
          AND (CAST(:on AS date) IS NULL OR (u.valid_from <= :on
               AND (u.valid_to IS NULL OR u.valid_to >= :on)))
          AND (CAST(:ids AS text[]) IS NULL OR u.id = ANY(CAST(:ids AS text[])))
        ORDER BY u.path
        """),
        {"under": under, "level": level, "on": on, "ids": list(ids) if ids is not None else None},
    )).mappings().all()  # fmt: skip
    return [dict(r) for r in rows]


def units_csv(units: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    for u in units:
        w.writerow([
            u["id"], u["name"], u["level"], u["kind"], u["parent_id"] or "",
            u["valid_from"].isoformat(), u["valid_to"].isoformat() if u["valid_to"] else "",
            ";".join(u["aliases"] or []),
            ";".join(f"{k}={v}" for k, v in sorted((u["external_codes"] or {}).items())),
        ])  # fmt: skip
    return buf.getvalue()


MEMBERS_CTE = """
WITH RECURSIVE roots(agg, root) AS (
    SELECT id, id FROM scoring.units WHERE id = ANY(CAST(:units AS text[]))
    UNION
    SELECT r.agg, l.from_id FROM roots r
    JOIN scoring.unit_lineage l ON l.to_id = r.root AND l.kind = 'merged_into'
),
members AS (
    SELECT DISTINCT r.agg, d.id AS member
    FROM roots r
    JOIN scoring.units ru ON ru.id = r.root
    JOIN scoring.units d ON d.path LIKE ru.path || '%'
)
"""
"""(agg, member): every unit whose facts count toward `agg` — its subtree and, transitively, the
subtrees of units merged into it."""


async def aggregation_targets(session: AsyncSession, units: Sequence[str]) -> list[str]:
    """Every unit whose figures include facts of `units`: ancestors by path, and (transitively)
    the units they were merged into, with those units' ancestors."""
    rows = (await session.execute(
        text("""
        WITH RECURSIVE up(id) AS (
            SELECT id FROM scoring.units WHERE id = ANY(CAST(:units AS text[]))
            UNION
            SELECT x.id FROM up
            JOIN scoring.units u ON u.id = up.id
            JOIN LATERAL (
                SELECT a.id FROM scoring.units a WHERE u.path LIKE a.path || '%'
                UNION ALL
                SELECT l.to_id FROM scoring.unit_lineage l
                WHERE l.from_id = u.id AND l.kind = 'merged_into'
            ) x ON true
        )
        SELECT id FROM up ORDER BY id
        """),
        {"units": list(units)},
    )).scalars().all()  # fmt: skip
    return list(rows)
