"""PAR INDEX component-criterion points entered by inspectors, with evidence.

Revision ID: scoring_0003
Revises: scoring_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0003"
down_revision: str | None = "scoring_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
    CREATE TABLE scoring.par_entries (
        unit_id text NOT NULL,
        year integer NOT NULL,
        code text NOT NULL,
        points double precision NOT NULL CHECK (points >= 0),
        evidence text NOT NULL CHECK (length(evidence) >= 3),
        entered_by text NOT NULL,
        entered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (unit_id, year, code)
    )
    """)


def downgrade() -> None:
    op.execute("DROP TABLE scoring.par_entries")
