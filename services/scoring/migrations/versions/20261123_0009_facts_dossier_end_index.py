"""Dossier facts indexed by (unit, end of processing): a unit-period refresh reads the open
dossier spans of one unit at the period's stock instant (`end_at IS NULL OR end_at >= first
instant`), and late-open explanations read the same. Through the (unit_id, kind) index that
meant fetching every dossier the unit ever had (~14k heap pages for a commune of the 2M-dossier
bench, 21 ms); through this one, the ~300 that are open at the instant (0.6 ms).

Revision ID: scoring_0009
Revises: scoring_0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0009"
down_revision: str | None = "scoring_0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_facts_dossier_unit_end ON scoring.facts (unit_id, end_at) "
        "WHERE kind = 'dossier'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX scoring.ix_facts_dossier_unit_end")
