"""Snapshot points beside the documents: `points` holds {"groups": {id: points}, "indicators":
{id: points}}, a few hundred bytes stored in line. A ranking reads one group's or indicator's
points of every unit of a period; out of the documents that meant path queries over `groups`
and detoasting every unit's `indicators` document (~5.8 KB, stored out of line) to read one
number. Existing rows are filled from their documents. Compressed with lz4 like the documents
(scoring_0008), where the server supports it.

Revision ID: scoring_0010
Revises: scoring_0009
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

from shared.migrate import prefer_lz4_sql

revision: str = "scoring_0010"
down_revision: str | None = "scoring_0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _points_of(column: str) -> str:
    return (
        f"(SELECT coalesce(jsonb_object_agg(d.key, d.value -> 'points'), '{{}}'::jsonb) "
        f"FROM jsonb_each({column}) AS d)"
    )


def upgrade() -> None:
    op.execute("ALTER TABLE scoring.snapshots ADD COLUMN points jsonb")
    op.execute(f"""
        UPDATE scoring.snapshots SET points = jsonb_build_object(
            'groups', {_points_of("groups")}, 'indicators', {_points_of("indicators")})
    """)
    op.execute("ALTER TABLE scoring.snapshots ALTER COLUMN points SET NOT NULL")
    op.execute(prefer_lz4_sql("scoring.snapshots", ("points",), "snapshot points"))


def downgrade() -> None:
    op.execute("ALTER TABLE scoring.snapshots DROP COLUMN points")
