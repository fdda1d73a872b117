"""Connector options per source (vendor details that differ between deployments: paths,
parameter names, status vocabularies, an OpenCPS `groupId`), and the source's own clock: the
time the source reported (national `server_time`) kept with the checkpoint and, with the newest
`NgayCapNhat` seen, on the source, so lag is measured against the source, not our clock.

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
    op.execute(
        "ALTER TABLE ingest.sources ADD COLUMN options jsonb NOT NULL DEFAULT '{}'::jsonb, "
        "ADD COLUMN source_time timestamptz, ADD COLUMN newest_seen timestamptz"
    )
    op.execute("ALTER TABLE ingest.checkpoints ADD COLUMN source_time timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE ingest.checkpoints DROP COLUMN source_time")
    op.execute(
        "ALTER TABLE ingest.sources DROP COLUMN options, DROP COLUMN source_time, "
        "DROP COLUMN newest_seen"
    )
