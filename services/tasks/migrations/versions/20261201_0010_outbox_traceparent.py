"""Trace context on the outbox: `outbox.traceparent` (published as `ce_traceparent`), so one
trace follows an event from the span that wrote it to the consumers that act on it.

Revision ID: tasks_0010
Revises: tasks_0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from shared.events.migration_ops import add_outbox_traceparent_v3, drop_outbox_traceparent_v3

revision: str = "tasks_0010"
down_revision: str | None = "tasks_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_traceparent_v3("tasks")


def downgrade() -> None:
    drop_outbox_traceparent_v3("tasks")
