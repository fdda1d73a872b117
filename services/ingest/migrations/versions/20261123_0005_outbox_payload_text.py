"""Outbox payload as `text`: the event JSON exactly as the relay publishes it.

jsonb made PostgreSQL parse every event on insert (~4 µs per 600 B on ingest's hot path) only for
the relay to print it back as text. Keeps the column's compression setting.

Revision ID: ingest_0005
Revises: ingest_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from shared.events.migration_ops import outbox_payload_jsonb_v2, outbox_payload_text_v2

revision: str = "ingest_0005"
down_revision: str | None = "ingest_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    outbox_payload_text_v2("ingest")


def downgrade() -> None:
    outbox_payload_jsonb_v2("ingest")
