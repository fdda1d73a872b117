"""Lineage edges carry a weight and what they carry; officials may override a weight.
External codes are indexed by unit; `registry_meta` records the seeded data versions.

The 2025 reorganisation made the lineage many-to-many (an old ward split between new communes,
a new commune built from several old wards). `weight` is the share of the old unit's figures a
successor takes (derived from the mapping: the share of the old unit's wards that went there;
1 for a whole merger). `carries` says whether the old unit's whole subtree is carried
(`subtree`: a province, a department) or only its own facts (`self`: an old district or ward,
whose wards carry their own edges). `weight_source` is `derived` (from the shipped data, re-seeded
freely) or `official` (set by an official through the API, never overwritten by a seed).

Revision ID: scoring_0011
Revises: scoring_0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0011"
down_revision: str | None = "scoring_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


UPGRADE = (
    """
    ALTER TABLE scoring.unit_lineage
        ADD COLUMN weight double precision NOT NULL DEFAULT 1
            CHECK (weight >= 0 AND weight <= 1),
        ADD COLUMN carries text NOT NULL DEFAULT 'subtree'
            CHECK (carries IN ('subtree', 'self')),
        ADD COLUMN weight_source text NOT NULL DEFAULT 'derived'
            CHECK (weight_source IN ('derived', 'official')),
        ADD COLUMN weight_note text,
        ADD COLUMN weight_set_by text,
        ADD COLUMN weight_set_at timestamptz""",
    # split edges used to be display-only (never summed): keep them so until re-seeded
    "UPDATE scoring.unit_lineage SET weight = 0 WHERE kind = 'split_into'",
    "CREATE INDEX ix_unit_lineage_from ON scoring.unit_lineage (from_id)",
    # a unit's codes (listing 15,000 units read them per unit: without it, a scan each)
    "CREATE INDEX ix_unit_external_codes_unit ON scoring.unit_external_codes (unit_id)",
    """
    CREATE TABLE scoring.registry_meta (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    )""",
)


def downgrade() -> None:
    op.execute("DROP TABLE scoring.registry_meta")
    op.execute("DROP INDEX scoring.ix_unit_lineage_from")
    op.execute("DROP INDEX scoring.ix_unit_external_codes_unit")
    op.execute("""
    ALTER TABLE scoring.unit_lineage
        DROP COLUMN weight, DROP COLUMN carries, DROP COLUMN weight_source,
        DROP COLUMN weight_note, DROP COLUMN weight_set_by, DROP COLUMN weight_set_at;
    """)
