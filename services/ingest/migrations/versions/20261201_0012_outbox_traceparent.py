"""Trace context on the outbox: `outbox.traceparent` (published as `ce_traceparent`), so one
trace follows an event from the span that wrote it to the consumers that act on it.

Revision ID: ingest_0012
Revises: ingest_0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from shared.events.migration_ops import add_outbox_traceparent_v3, drop_outbox_traceparent_v3

revision: str = "ingest_0012"
down_revision: str | None = "ingest_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    add_outbox_traceparent_v3("ingest")


def downgrade() -> None:
    drop_outbox_traceparent_v3("ingest")
