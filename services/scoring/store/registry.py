"""Effective-dated unit registry with materialised paths, weighted lineage and external codes.

`path` is `/root/…/id/`, so a subtree is one `path LIKE '/P21/%'`. Aggregation of a unit also
takes in its predecessors through lineage edges (transitively), each with the edge's `weight`:
a figure of a period before 1 July 2025 for a new commune is the weighted sum of the old wards
(and the old district's own facts) it was built from, so a period reads under the units valid
then (the old ward's own figure) and under today's units (the new commune's). An edge `carries`
its predecessor's whole subtree (a merged province or department) or only the predecessor's own
facts (an old district or ward, whose wards carry their own edges); a unit reached by two routes
counts once, with the larger weight. Weights come from the shipped data (`weight_source`
'derived', re-seeded freely) or from an official (`official`, never overwritten by a seed).
"""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import orjson
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
    model_config = ConfigDict(extra="ignore")

    from_id: str
    to_id: str
    kind: str
    effective_on: Day
    weight: float = Field(default=1.0, ge=0, le=1)
    carries: str = Field(default="subtree", pattern="^(subtree|self)$")


def fold(name: str) -> str:
    """Accent- and case-insensitive form of a name: NFD without combining marks, đ → d."""
    decomposed = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


def compute_paths(units: Sequence[UnitIn]) -> dict[str, str]:
    return paths_of({u.id: u.parent_id for u in units})


def paths_of(parents: Mapping[str, str | None]) -> dict[str, str]:
    """`/root/…/id/` of every unit, from {id: parent id}."""
    paths: dict[str, str] = {}

    def path(uid: str, seen: frozenset[str] = frozenset()) -> str:
        if uid in paths:
            return paths[uid]
        if uid in seen:
            raise ValueError(f"cycle in the unit tree at {uid}")
        parent = parents[uid]
        if parent is None:
            p = f"/{uid}/"
        elif parent not in parents:
            raise ValueError(f"{uid}: unknown parent {parent}")
        else:
            p = f"{path(parent, seen | {uid})}{uid}/"
        paths[uid] = p
        return p

    for uid in parents:
        path(uid)
    return paths


UNIT_COLUMNS = ("id", "name", "level", "kind", "parent_id", "valid_from", "valid_to", "aliases")


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
    return await write_units(
        session,
        [u.model_dump(mode="json") for u in units],
        [e.model_dump(mode="json") for e in lineage],
    )


async def write_units(
    session: AsyncSession, units: Sequence[Mapping[str, Any]], lineage: Sequence[Mapping[str, Any]]
) -> int:
    """`import_units` on rows shaped like units.json (dates as ISO strings), so the shipped
    file (≈15,000 units) is written without building a model per row."""
    existing = await session.execute(text("SELECT id, parent_id FROM scoring.units"))
    parents: dict[str, str | None] = {uid: parent for uid, parent in existing.all()}
    parents.update({u["id"]: u.get("parent_id") for u in units})
    paths = paths_of(parents)
    rows = [
        {k: u.get(k) for k in UNIT_COLUMNS} | {"aliases": u.get("aliases") or [],
                                               "path": paths[u["id"]]}
        for u in units
    ]  # fmt: skip
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
        -- a re-seed of the same data writes nothing
        WHERE (scoring.units.name, scoring.units.level, scoring.units.kind,
               scoring.units.parent_id, scoring.units.valid_from, scoring.units.valid_to,
               scoring.units.aliases, scoring.units.path)
              IS DISTINCT FROM (excluded.name, excluded.level, excluded.kind, excluded.parent_id,
                                excluded.valid_from, excluded.valid_to, excluded.aliases,
                                excluded.path)
        """),
        {"rows": _json(rows)},
    )
    # a moved unit moves its subtree: refresh every path (cheap: thousands of rows)
    await session.execute(
        text("""
        UPDATE scoring.units u SET path = r.path
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(id text, path text)
        WHERE u.id = r.id AND u.path <> r.path
        """),
        {"rows": _json([{"id": k, "path": v} for k, v in paths.items()])},
    )
    codes = [
        {"source": s, "code": c, "unit_id": u["id"]}
        for u in units
        for s, c in (u.get("external_codes") or {}).items()
    ]
    if codes:
        await session.execute(
            text("""
            INSERT INTO scoring.unit_external_codes (source, code, unit_id)
            SELECT source, code, unit_id
            FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(source text, code text, unit_id text)
            ON CONFLICT (source, code) DO UPDATE SET unit_id = excluded.unit_id
            WHERE scoring.unit_external_codes.unit_id <> excluded.unit_id
            """),
            {"rows": _json(codes)},
        )
    if lineage:
        await session.execute(
            text("""
            INSERT INTO scoring.unit_lineage (from_id, to_id, kind, effective_on, weight, carries)
            SELECT from_id, to_id, kind, effective_on, weight, carries
            FROM jsonb_to_recordset(CAST(:rows AS jsonb))
                 AS r(from_id text, to_id text, kind text, effective_on date, weight float8,
                      carries text)
            ON CONFLICT (from_id, to_id, kind) DO UPDATE SET effective_on = excluded.effective_on,
                carries = excluded.carries,
                -- an official's weight stands until an official changes it
                weight = CASE WHEN scoring.unit_lineage.weight_source = 'official'
                              THEN scoring.unit_lineage.weight ELSE excluded.weight END
            WHERE (scoring.unit_lineage.effective_on, scoring.unit_lineage.carries,
                   scoring.unit_lineage.weight)
                  IS DISTINCT FROM (excluded.effective_on, excluded.carries, excluded.weight)
            """),
            {"rows": _json([{"weight": 1.0, "carries": "subtree"} | dict(e) for e in lineage])},
        )
    return len(rows)


def load_seed(path: Path = SEED_PATH) -> tuple[list[UnitIn], list[LineageIn]]:
    raw = read_seed(path)
    return (
        [UnitIn.model_validate(u) for u in raw["units"]],
        [LineageIn.model_validate(e) for e in raw.get("lineage", [])],
    )


def _json(rows: Any) -> str:
    return orjson.dumps(rows).decode()


def read_seed(path: Path = SEED_PATH) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(path.read_bytes())
    return data


def seed_data_versions(path: Path = SEED_PATH) -> dict[str, Any]:
    """The data versions of the shipped file, read from its head (the file writes them before
    the units, one key a line), without parsing the ~5 MB of units."""
    with path.open("rb") as f:
        for line in f:
            if line.startswith(b'"data_versions":'):
                value: dict[str, Any] = orjson.loads(line.split(b":", 1)[1].rstrip(b",\n"))
                return value
            if line.startswith(b'"units"'):
                break
    return dict(read_seed(path).get("data_versions") or {})


async def seed_units(session: AsyncSession, path: Path = SEED_PATH) -> int:
    """Load the shipped registry (≈15,000 units, ≈14,000 edges) in a few set-based statements,
    and record its data versions (`registry_meta`), so what is loaded can be read back. The
    file is generated and tested (tests/scoring/test_registry_geography.py): its rows go to
    PostgreSQL as they are, without a model per row."""
    raw = read_seed(path)
    n = await write_units(session, raw["units"], raw.get("lineage", []))
    meta = {k: v for k, v in raw.items() if k not in ("units", "lineage")}
    await session.execute(
        text("""
        INSERT INTO scoring.registry_meta (key, value) VALUES ('seed', CAST(:v AS jsonb))
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now()
        """),
        {"v": json.dumps(meta, ensure_ascii=False)},
    )
    return n


async def registry_meta(session: AsyncSession) -> dict[str, Any]:
    row = await session.scalar(text("SELECT value FROM scoring.registry_meta WHERE key = 'seed'"))
    return dict(row or {})


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
    code: str | None = None,
) -> list[dict[str, Any]]:
    rows = (await session.execute(
        text("""
        SELECT u.id, u.name, u.level, u.kind, u.parent_id, u.valid_from, u.valid_to, u.path,
               u.aliases, COALESCE(c.codes, '{}') AS external_codes
        FROM scoring.units u
        -- one grouped pass over the codes (~30,000 rows), not a lookup per unit
        LEFT JOIN (SELECT unit_id, jsonb_object_agg(source, code) AS codes
                   FROM scoring.unit_external_codes
                   WHERE CAST(:ids AS text[]) IS NULL OR unit_id = ANY(CAST(:ids AS text[]))
                   GROUP BY unit_id) c ON c.unit_id = u.id
        WHERE (CAST(:under AS text) IS NULL OR u.path LIKE (
                  SELECT p.path FROM scoring.units p WHERE p.id = :under) || '%')
          AND (CAST(:level AS text) IS NULL OR u.level = :level)
          AND (CAST(:on AS date) IS NULL OR (u.valid_from <= :on
               AND (u.valid_to IS NULL OR u.valid_to >= :on)))
          AND (CAST(:ids AS text[]) IS NULL OR u.id = ANY(CAST(:ids AS text[])))
          AND (CAST(:code AS text) IS NULL OR u.id IN (
                  SELECT c.unit_id FROM scoring.unit_external_codes c WHERE c.code = :code))
        ORDER BY u.path
        """),
        {"under": under, "level": level, "on": on, "ids": list(ids) if ids is not None else None,
         "code": code},
    )).mappings().all()  # fmt: skip
    return [dict(r) for r in rows]


async def search_names(
    session: AsyncSession,
    q: str,
    *,
    under: str | None = None,
    level: str | None = None,
    on: date | None = None,
    ids: Iterable[str] | None = None,
    code: str | None = None,
) -> list[str]:
    """Ids of the units (within the filters of `list_units`) whose name or an alias contains
    `q`, accent- and case-insensitively ("phuong hoan kiem" finds "Phường Hoàn Kiếm")."""
    rows = await session.execute(
        text("""
        SELECT u.id, u.name, u.aliases FROM scoring.units u
        WHERE (CAST(:under AS text) IS NULL OR u.path LIKE (
                  SELECT p.path FROM scoring.units p WHERE p.id = :under) || '%')
          AND (CAST(:level AS text) IS NULL OR u.level = :level)
          AND (CAST(:on AS date) IS NULL OR (u.valid_from <= :on
               AND (u.valid_to IS NULL OR u.valid_to >= :on)))
          AND (CAST(:ids AS text[]) IS NULL OR u.id = ANY(CAST(:ids AS text[])))
          AND (CAST(:code AS text) IS NULL OR u.id IN (
                  SELECT c.unit_id FROM scoring.unit_external_codes c WHERE c.code = :code))
        """),
        {"under": under, "level": level, "on": on, "code": code,
         "ids": list(ids) if ids is not None else None},
    )  # fmt: skip
    needle = fold(q)
    return [
        uid
        for uid, name, aliases in rows.all()
        if any(needle in fold(n) for n in (name, *(aliases or ())))
    ]


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
WITH RECURSIVE roots(agg, root, weight, carries) AS (
    SELECT id, id, 1.0::float8, 'subtree' FROM scoring.units
    WHERE id = ANY(CAST(:units AS text[]))
    UNION
    SELECT r.agg, l.from_id, r.weight * l.weight, l.carries FROM roots r
    JOIN scoring.unit_lineage l ON l.to_id = r.root AND l.weight > 0
),
members AS (
    SELECT x.agg, x.member, max(x.weight) AS weight FROM (
        SELECT r.agg, d.id AS member, r.weight
        FROM roots r
        JOIN scoring.units ru ON ru.id = r.root
        -- the subtree as a range of the path index (every path ends in '/', and '0' follows
        -- '/'), not `LIKE ru.path || '%'`: a pattern that is not a constant is tested against
        -- every unit of the registry for every root (~1 s for a province's 527 members)
        JOIN scoring.units d ON d.path ~>=~ ru.path AND d.path ~<~ (left(ru.path, -1) || '0')
             AND d.path LIKE ru.path || '%'
        WHERE r.carries = 'subtree'
        UNION ALL
        SELECT r.agg, r.root, r.weight FROM roots r WHERE r.carries = 'self'
    ) x
    GROUP BY x.agg, x.member
)
"""
"""(agg, member, weight): every unit whose facts count toward `agg`, with the share they count
for — its subtree (1) and, transitively through lineage, its predecessors (the edges' weights,
multiplied along a chain)."""


async def aggregation_targets(session: AsyncSession, units: Sequence[str]) -> list[str]:
    """Every unit whose figures include facts of `units`: ancestors by path, and (transitively)
    their successors through weighted lineage, with those units' ancestors."""
    rows = (await session.execute(
        text("""
        WITH RECURSIVE up(id) AS (
            SELECT id FROM scoring.units WHERE id = ANY(CAST(:units AS text[]))
            UNION
            SELECT x.id FROM up
            JOIN scoring.units u ON u.id = up.id
            JOIN LATERAL (
                -- the ancestors (and the unit) are the ids its path is made of
                SELECT a.id FROM scoring.units a
                WHERE a.id = ANY(string_to_array(trim(BOTH '/' FROM u.path), '/'))
                UNION ALL
                SELECT l.to_id FROM scoring.unit_lineage l
                WHERE l.from_id = u.id AND l.weight > 0
            ) x ON true
        )
        SELECT id FROM up ORDER BY id
        """),
        {"units": list(units)},
    )).scalars().all()  # fmt: skip
    return list(rows)


async def unit_names(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    """The names of units, by id."""
    rows = await session.execute(
        text("SELECT id, name FROM scoring.units WHERE id = ANY(CAST(:ids AS text[]))"),
        {"ids": sorted(ids)},
    )
    return {i: n for i, n in rows.all()}


async def procedure_names(session: AsyncSession, codes: set[str]) -> dict[str, str]:
    """TenTTHC of procedure codes (MaTTHC), from the procedure facts (one name per code)."""
    if not codes:
        return {}
    rows = await session.execute(
        text("""
        SELECT DISTINCT ON (procedure) procedure, doc ->> 'name'
        FROM scoring.facts WHERE kind = 'procedure' AND procedure = ANY(CAST(:c AS text[]))
        ORDER BY procedure, source_updated_at DESC
        """),
        {"c": sorted(codes)},
    )
    return {c: n for c, n in rows.all() if n}
