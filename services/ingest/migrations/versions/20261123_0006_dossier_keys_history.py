"""Dossiers: one key index; status history only for real transitions.

- The primary key becomes (code, source_id): one index serves both "track my dossier" by code
  and the upsert's `ON CONFLICT (source_id, code)` (inference matches the column set), so the
  separate index on (code) goes. The index on (unit_id, source_updated_at) served no query.
- `dossiers.status_since`: when the current status began (the `source_updated_at` of the
  version that brought it).
- `dossier_status_history` holds only transitions of an already stored dossier, each with the
  previous status and when that one began (`previous_status_since`); the first entry of a trail
  is derived (the first transition's previous status, or the current row when there was none),
  so a new dossier no longer writes a history row.

Revision ID: ingest_0006
Revises: ingest_0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0006"
down_revision: str | None = "ingest_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DROP INDEX ingest.ix_dossiers_code")
    op.execute("DROP INDEX ingest.ix_dossiers_unit_id_source_updated_at")
    op.execute("ALTER TABLE ingest.dossiers DROP CONSTRAINT pk_dossiers")
    op.execute("ALTER TABLE ingest.dossiers ADD CONSTRAINT pk_dossiers PRIMARY KEY (code, source_id)")
    op.execute("ALTER TABLE ingest.dossiers ADD COLUMN status_since timestamptz")
    op.execute(
        "ALTER TABLE ingest.dossier_status_history ADD COLUMN previous_status_since timestamptz"
    )
    # Transitions get the start of the status they left: the entry before them in the trail.
    op.execute("""
        UPDATE ingest.dossier_status_history h SET previous_status_since = p.prev
        FROM (SELECT id, lag(source_updated_at) OVER (
                  PARTITION BY source_id, code ORDER BY source_updated_at, id) AS prev
              FROM ingest.dossier_status_history) p
        WHERE p.id = h.id AND h.previous_status IS NOT NULL""")
    op.execute("""
        UPDATE ingest.dossiers d SET status_since = coalesce(
            (SELECT max(h.source_updated_at) FROM ingest.dossier_status_history h
             WHERE h.source_id = d.source_id AND h.code = d.code), d.source_updated_at)""")
    # The first entries (no previous status) are derived from now on.
    op.execute("DELETE FROM ingest.dossier_status_history WHERE previous_status IS NULL")


def downgrade() -> None:
    op.execute("""
        INSERT INTO ingest.dossier_status_history
            (source_id, code, status, previous_status, source_updated_at, run_id, recorded_at)
        SELECT d.source_id, d.code, coalesce(f.previous_status, d.status), NULL,
               coalesce(f.previous_status_since, d.status_since, d.source_updated_at),
               d.run_id, d.first_seen_at
        FROM ingest.dossiers d
        LEFT JOIN LATERAL (
            SELECT h.previous_status, h.previous_status_since
            FROM ingest.dossier_status_history h
            WHERE h.source_id = d.source_id AND h.code = d.code
            ORDER BY h.source_updated_at, h.id LIMIT 1) f ON true""")
    op.execute("ALTER TABLE ingest.dossier_status_history DROP COLUMN previous_status_since")
    op.execute("ALTER TABLE ingest.dossiers DROP COLUMN status_since")
    op.execute("ALTER TABLE ingest.dossiers DROP CONSTRAINT pk_dossiers")
    op.execute("ALTER TABLE ingest.dossiers ADD CONSTRAINT pk_dossiers PRIMARY KEY (source_id, code)")
    op.execute("CREATE INDEX ix_dossiers_code ON ingest.dossiers (code)")
    op.execute(
        "CREATE INDEX ix_dossiers_unit_id_source_updated_at "
        "ON ingest.dossiers (unit_id, source_updated_at)"
    )
