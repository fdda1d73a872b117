"""Event tables: transactional outbox and processed events (idempotent consumers).

Revision ID: ingest_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from shared.events.migration_ops import create_event_tables_v1, drop_event_tables_v1

revision: str = "ingest_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_event_tables_v1("ingest")


def downgrade() -> None:
    drop_event_tables_v1("ingest")
