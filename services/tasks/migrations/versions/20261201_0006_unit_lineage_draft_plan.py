"""Unit lineage (who took over an abolished unit), the draft's confirmation plan, revisions.

* ``tasks.unit_lineage``: edges ``from_id → to_id`` effective on a date, seeded from
  shared/reference/units.json like ``tasks.units``, so a task for a unit abolished by the
  2025 restructuring goes to its successor;
* ``drafts.meta``: what the draft showed before confirming (document number, issuer,
  province, the confirmation date, per-item target units, warnings) — confirming creates
  exactly that;
* ``conclusions.revision_of``: a conclusion confirmed as a revision of an earlier one with
  the same number from the same issuer (otherwise that is a 409).

Revision ID: tasks_0006
Revises: tasks_0005
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "tasks_0006"
down_revision: str | None = "tasks_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNITS_JSON = Path(__file__).resolve().parents[4] / "shared" / "reference" / "units.json"


def upgrade() -> None:
    op.create_table(
        "unit_lineage",
        sa.Column("from_id", sa.Text(), nullable=False),
        sa.Column("to_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("from_id", "to_id", name="pk_unit_lineage"),
        schema="tasks",
    )
    op.add_column(
        "drafts",
        sa.Column(
            "meta", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        schema="tasks",
    )
    op.add_column("conclusions", sa.Column("revision_of", sa.Text()), schema="tasks")
    op.create_index(
        "ix_conclusions_issuer_number", "conclusions", ["issuer", "number"], schema="tasks"
    )
    data = json.loads(UNITS_JSON.read_text(encoding="utf-8"))
    table = sa.table(
        "unit_lineage",
        sa.column("from_id", sa.Text),
        sa.column("to_id", sa.Text),
        sa.column("kind", sa.Text),
        sa.column("effective_on", sa.Date),
        schema="tasks",
    )
    known = {u["id"] for u in data["units"]}
    rows = {
        (e["from_id"], e["to_id"]): {
            "from_id": e["from_id"],
            "to_id": e["to_id"],
            "kind": e.get("kind") or "",
            "effective_on": date.fromisoformat(e["effective_on"])
            if e.get("effective_on")
            else None,
        }
        for e in data.get("lineage") or []
        if e["from_id"] in known and e["to_id"] in known
    }
    if rows:
        op.bulk_insert(table, list(rows.values()))


def downgrade() -> None:
    op.drop_index("ix_conclusions_issuer_number", table_name="conclusions", schema="tasks")
    op.drop_column("conclusions", "revision_of", schema="tasks")
    op.drop_column("drafts", "meta", schema="tasks")
    op.drop_table("unit_lineage", schema="tasks")
