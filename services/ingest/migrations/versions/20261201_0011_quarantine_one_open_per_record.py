"""One open quarantine entry per (source, feed, record code).

A malformed record that changed and was still malformed opened a second entry while the first
stayed open (entries were deduplicated by payload fingerprint only), so the quarantine listed
the same dossier several times with stale reasons. Now the open entry of a code is updated in
place (its reasons, payload and fingerprint follow the latest version), enforced by a unique
partial index; payload deduplication applies among open entries only, so a payload that comes
back after its entry was resolved or superseded opens a new entry. Existing duplicates: the
most recently seen open entry of a code stays open, the others are marked superseded.

Revision ID: ingest_0011
Revises: ingest_0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "ingest_0011"
down_revision: str | None = "ingest_0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("""
        UPDATE ingest.quarantine q SET status = 'superseded', resolved_at = now()
        FROM (
            SELECT id, row_number() OVER (PARTITION BY source_id, feed, code
                                          ORDER BY last_seen_at DESC, id DESC) AS n
            FROM ingest.quarantine WHERE status = 'open' AND code IS NOT NULL
        ) d
        WHERE q.id = d.id AND d.n > 1""")
    op.execute("DROP INDEX ingest.ix_quarantine_open_code")
    op.execute(
        "CREATE UNIQUE INDEX ix_quarantine_open_code ON ingest.quarantine "
        "(source_id, feed, code) WHERE status = 'open'"
    )
    op.execute("DROP INDEX ingest.ix_quarantine_source_id_feed_fingerprint")
    op.execute(
        "CREATE UNIQUE INDEX ix_quarantine_open_fingerprint ON ingest.quarantine "
        "(source_id, feed, fingerprint) WHERE status = 'open'"
    )


def downgrade() -> None:
    # entries superseded by the upgrade stay superseded (which of them were is not kept); a
    # payload reopened after resolution keeps only its newest entry under the old unique index
    op.execute("""
        DELETE FROM ingest.quarantine q USING (
            SELECT id, row_number() OVER (PARTITION BY source_id, feed, fingerprint
                                          ORDER BY (status = 'open') DESC, id DESC) AS n
            FROM ingest.quarantine
        ) d
        WHERE q.id = d.id AND d.n > 1""")
    op.execute("DROP INDEX ingest.ix_quarantine_open_fingerprint")
    op.execute(
        "CREATE UNIQUE INDEX ix_quarantine_source_id_feed_fingerprint ON ingest.quarantine "
        "(source_id, feed, fingerprint)"
    )
    op.execute("DROP INDEX ingest.ix_quarantine_open_code")
    op.execute(
        "CREATE INDEX ix_quarantine_open_code ON ingest.quarantine "
        "(source_id, feed, code) WHERE status = 'open'"
    )
