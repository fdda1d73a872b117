"""Snapshot documents compressed with lz4 instead of pglz: an indicator ranking reads one value
out of every unit's `indicators` document (~5.8 KB, stored out of line), and lz4 decompresses
several times faster (a 3,321-commune read: 38 → 21 ms in PostgreSQL); it also compresses faster
when a rebuild writes thousands of versions. Applies to rows written from now on (existing rows
keep pglz until rewritten; both stay readable). Servers built without lz4 keep pglz.

Revision ID: scoring_0008
Revises: scoring_0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

from shared.migrate import prefer_lz4_sql

revision: str = "scoring_0008"
down_revision: str | None = "scoring_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("groups", "indicators", "counters")


def _compression(method: str) -> str:
    return "ALTER TABLE scoring.snapshots " + ", ".join(
        f"ALTER COLUMN {c} SET COMPRESSION {method}" for c in COLUMNS
    )


def upgrade() -> None:
    op.execute(prefer_lz4_sql("scoring.snapshots", COLUMNS, "snapshot documents"))


def downgrade() -> None:
    op.execute(_compression("default"))
