"""Connector options per source (vendor details that differ between deployments: paths,
parameter names, status vocabularies, an OpenCPS `groupId`).

Revision ID: ingest_0009
Revises: ingest_0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0009"
down_revision: str | None = "ingest_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingest.sources ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE ingest.sources DROP COLUMN options")
