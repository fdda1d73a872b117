"""What the dossier view shows beyond the scoring record, and what re-processing and lag need.

- `dossiers.details`: the names, fees (DanhSachLePhi), supplements (DanhSachHoSoBoSung) and
  processing steps (QuaTrinhXuLy) the source sent, in the national field set, as JSON text
  (`domain.details`). Text, not JSONB: the view reads it whole, and parsing ~2 KB of JSONB per
  row on the ingest hot path cost PostgreSQL ~3x the CPU of storing it as text. Compressed with
  lz4 where the server has it (a row with many steps goes over the TOAST threshold).
- `quarantine.source_raw`: the record exactly as a vendor source sent it (iGate, OpenCPS),
  beside `raw` (its translation into national fields), so re-processing translates it again
  with the source's current mapping. NULL for sources that send national fields.
- `runs.lag_clock`, `sources.lag_clock`, `checkpoints.source_clock`: which clock `lag_s` was
  measured against: `server_time` (the national envelope's field), `http_date` (the source's
  HTTP Date header) or `local` (ours: the source reported no time).
- `push_acks`: the acknowledgement of every committed push batch that named its `session`,
  by (source, service, session, digest of the batch), written in the batch's transaction, so
  the same batch sent again is answered with the same acknowledgement and stores nothing.

Revision ID: ingest_0013
Revises: ingest_0012
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from shared.migrate import prefer_lz4_sql

revision: str = "ingest_0013"
down_revision: str | None = "ingest_0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE ingest.dossiers ADD COLUMN details text")
    op.execute(prefer_lz4_sql("ingest.dossiers", ("details",), "dossier details"))
    op.execute("ALTER TABLE ingest.quarantine ADD COLUMN source_raw text")
    op.execute("ALTER TABLE ingest.runs ADD COLUMN lag_clock text")
    op.execute("ALTER TABLE ingest.sources ADD COLUMN lag_clock text")
    op.execute("ALTER TABLE ingest.checkpoints ADD COLUMN source_clock text")
    op.execute("""
        CREATE TABLE ingest.push_acks (
            source_id text NOT NULL CONSTRAINT fk_push_acks_source_id_sources
                REFERENCES ingest.sources (id) ON DELETE CASCADE,
            service text NOT NULL,
            session text NOT NULL,
            digest text NOT NULL,
            ack jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            CONSTRAINT pk_push_acks PRIMARY KEY (source_id, service, session, digest)
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE ingest.push_acks")
    op.execute("ALTER TABLE ingest.checkpoints DROP COLUMN source_clock")
    op.execute("ALTER TABLE ingest.sources DROP COLUMN lag_clock")
    op.execute("ALTER TABLE ingest.runs DROP COLUMN lag_clock")
    op.execute("ALTER TABLE ingest.quarantine DROP COLUMN source_raw")
    op.execute("ALTER TABLE ingest.dossiers DROP COLUMN details")
