"""Each unit's own period counters (its facts only, not its subtree), kept so that a parent's
figures are sums of its members' counters and a refresh recomputes only the members that changed.

Revision ID: scoring_0004
Revises: scoring_0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0004"
down_revision: str | None = "scoring_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE scoring.own_counters (
        unit_id text NOT NULL,
        period text NOT NULL,
        at timestamptz NOT NULL,
        counters jsonb NOT NULL,
        computed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (unit_id, period)
    )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE scoring.own_counters")
