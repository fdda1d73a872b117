"""Administrative boundaries a province uploads (GeoJSON), one document per uploading unit,
for the dashboard's commune map. Stored with the unit registry they belong to; features are
keyed by unit id.

Revision ID: scoring_0014
Revises: scoring_0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0014"
down_revision: str | None = "scoring_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE scoring.unit_boundaries (
            unit_id text PRIMARY KEY,
            features jsonb NOT NULL,
            feature_count integer NOT NULL,
            uploaded_by text NOT NULL,
            uploaded_at timestamptz NOT NULL DEFAULT now()
        )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE scoring.unit_boundaries")
