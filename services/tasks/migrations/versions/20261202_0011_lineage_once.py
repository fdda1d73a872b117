"""The 2025 lineage kept once: `tasks.unit_lineage` gains each edge's `weight` (the share of the
old unit's duties the successor takes) and `tasks.units.successors`, a second copy of the same
edges seeded by tasks_0005, is dropped; the unit directory derives each unit's successors from
the lineage table.

Revision ID: tasks_0011
Revises: tasks_0010
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "tasks_0011"
down_revision: str | None = "tasks_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE tasks.unit_lineage ADD COLUMN weight double precision NOT NULL DEFAULT 1.0"
    )
    # an edge only the copy had (none in the shipped data) is kept, with its weight
    op.execute("""
        INSERT INTO tasks.unit_lineage (from_id, to_id, kind, effective_on, weight)
        SELECT u.id, s->>'id', coalesce(s->>'kind', 'merged_into'),
               CAST(s->>'effective_on' AS date), coalesce(CAST(s->>'weight' AS float8), 1.0)
        FROM tasks.units u, jsonb_array_elements(u.successors) s
        WHERE s->>'id' IS NOT NULL
        ON CONFLICT (from_id, to_id) DO UPDATE SET weight = excluded.weight
    """)
    op.execute("ALTER TABLE tasks.units DROP COLUMN successors")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE tasks.units ADD COLUMN successors jsonb NOT NULL DEFAULT '[]'::jsonb"
    )
    op.execute("""
        UPDATE tasks.units u SET successors = e.edges
        FROM (SELECT from_id, jsonb_agg(jsonb_build_object(
                  'id', to_id, 'kind', kind, 'effective_on', effective_on, 'weight', weight)
                  ORDER BY to_id) AS edges
              FROM tasks.unit_lineage GROUP BY from_id) e
        WHERE e.from_id = u.id
    """)
    op.execute("ALTER TABLE tasks.unit_lineage DROP COLUMN weight")
