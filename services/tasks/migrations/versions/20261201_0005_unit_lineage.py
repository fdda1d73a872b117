"""Units carry their external codes and successors; the registry is re-seeded with real data.

Name resolution maps an abolished unit (a department merged on 1 March 2025, a district or ward
abolished on 1 July 2025) to its successors as of a document's date: `successors` holds the
unit's outgoing lineage edges from shared/reference/units.json ([{id, kind, effective_on,
weight}]), `external_codes` its codes ({source: code}: GSO, the national portal's H26.n, …),
`position` its place in the file, which lists the demo province first: a name that many
provinces share ("Sở Nội vụ") is looked up in that order.
Every unit of the file is upserted in one statement (≈15,000 rows); units no longer in the file
are kept (items may name them).

Revision ID: tasks_0005
Revises: tasks_0004
Create Date: 2026-12-01
"""

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "tasks_0005"
down_revision: str | None = "tasks_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNITS_JSON = Path(__file__).resolve().parents[4] / "shared" / "reference" / "units.json"


def seed_rows(path: Path = UNITS_JSON) -> list[dict[str, Any]]:
    data = json.loads(path.read_bytes())
    successors: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in data.get("lineage", []):
        successors[e["from_id"]].append(
            {
                "id": e["to_id"],
                "kind": e["kind"],
                "effective_on": e["effective_on"],
                "weight": e.get("weight", 1.0),
            }
        )
    return [
        {
            "id": u["id"],
            "name": u["name"],
            "level": u["level"],
            "kind": u["kind"],
            "parent_id": u.get("parent_id"),
            "valid_from": u.get("valid_from"),
            "valid_to": u.get("valid_to"),
            "aliases": u.get("aliases") or [],
            "external_codes": u.get("external_codes") or {},
            "successors": successors.get(u["id"], []),
            "position": i,
        }
        for i, u in enumerate(data["units"])
    ]


def upgrade() -> None:
    op.execute("""
    ALTER TABLE tasks.units
        ADD COLUMN external_codes jsonb NOT NULL DEFAULT '{}'::jsonb,
        ADD COLUMN successors jsonb NOT NULL DEFAULT '[]'::jsonb,
        ADD COLUMN position integer
    """)
    op.get_bind().execute(
        sa.text("""
        INSERT INTO tasks.units (id, name, level, kind, parent_id, valid_from, valid_to, aliases,
                                 external_codes, successors, position)
        SELECT id, name, level, kind, parent_id, valid_from, valid_to, aliases, external_codes,
               successors, position
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(
            id text, name text, level text, kind text, parent_id text, valid_from date,
            valid_to date, aliases jsonb, external_codes jsonb, successors jsonb,
            position integer)
        ON CONFLICT (id) DO UPDATE SET name = excluded.name, level = excluded.level,
            kind = excluded.kind, parent_id = excluded.parent_id,
            valid_from = excluded.valid_from, valid_to = excluded.valid_to,
            aliases = excluded.aliases, external_codes = excluded.external_codes,
            successors = excluded.successors, position = excluded.position
        """),
        {"rows": json.dumps(seed_rows(), ensure_ascii=False)},
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE tasks.units DROP COLUMN external_codes, DROP COLUMN successors, "
        "DROP COLUMN position"
    )
