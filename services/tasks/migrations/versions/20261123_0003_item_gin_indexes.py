"""GIN indexes for item filters on supporting units and criteria (JSONB containment).

Revision ID: tasks_0003
Revises: tasks_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "tasks_0003"
down_revision: str | None = "tasks_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "tasks"


def upgrade() -> None:
    op.create_index(
        "ix_items_supporting_units",
        "items",
        ["supporting_unit_ids"],
        schema=SCHEMA,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_items_criteria", "items", ["criteria"], schema=SCHEMA, postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index("ix_items_criteria", table_name="items", schema=SCHEMA)
    op.drop_index("ix_items_supporting_units", table_name="items", schema=SCHEMA)
