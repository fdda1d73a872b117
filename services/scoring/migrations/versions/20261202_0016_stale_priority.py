"""A priority on the stale queue: pairs queued by an event (a dossier changed, a counter
entered) are taken before the periodic catch-up of every unit with open dossiers, so a change
shows in its scores within seconds even while a province-wide catch-up is being worked through.

Revision ID: scoring_0016
Revises: scoring_0015
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0016"
down_revision: str | None = "scoring_0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # 0: queued by an event; 1: queued by the periodic catch-up (time alone moved the figures)
    op.execute("ALTER TABLE scoring.stale ADD COLUMN IF NOT EXISTS priority smallint NOT NULL DEFAULT 0")
    op.execute(
        "CREATE INDEX IF NOT EXISTS stale_take ON scoring.stale (priority, enqueued_at)"
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS scoring.stale_take")
    op.execute("ALTER TABLE scoring.stale DROP COLUMN IF EXISTS priority")
