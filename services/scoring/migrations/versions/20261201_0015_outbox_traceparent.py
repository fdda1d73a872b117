"""Trace context on the outbox: `outbox.traceparent` (published as `ce_traceparent`), so one
trace follows an event from the span that wrote it to the consumers that act on it.

Revision ID: scoring_0015
Revises: scoring_0014
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

from shared.events.migration_ops import add_outbox_traceparent_v3, drop_outbox_traceparent_v3

revision: str = "scoring_0015"
down_revision: str | None = "scoring_0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_traceparent_v3("scoring")
    # the stale queue keeps the trace of the event that queued a (unit, month)
    op.execute("ALTER TABLE scoring.stale ADD COLUMN IF NOT EXISTS traceparent text")


def downgrade() -> None:
    drop_outbox_traceparent_v3("scoring")
    op.execute("ALTER TABLE scoring.stale DROP COLUMN IF EXISTS traceparent")
