"""The portal's on-time share (ON_TIME) is of the dossiers received in the period: a leaf flow of
the dossiers received that month that are, as last known, not late (finished on time, or open
and within time when last updated). The column is filled from the stored dossier facts with the
rule the rebuild applies (`rebuild.DOSSIER_FACT_FLAGS["known_on_time"]`, frozen here: a migration
must not import the domain), so snapshots recomputed before the next rebuild already have it.
The narrow `leaf_counters` view is recreated with it.

Revision ID: scoring_0017
Revises: scoring_0016
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0017"
down_revision: str | None = "scoring_0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "received", "received_online", "synced", "fee_dossiers", "paid_online", "digitised",
    "digitised_e_result", "reused", "vneid", "finished", "finished_on_time", "finished_late",
    "needs_result", "e_result", "proc_published", "proc_published_on_time", "proc_public_due",
    "proc_public_on_time", "proc_public", "proc_public_complete", "pakn_handled",
    "pakn_handled_on_time", "pakn_rated", "pakn_satisfied", "finished_hours",
    "received_e_result", "received_online_on_time", "pds_synced", "citizen_data_dossiers",
    "pakn_about_tthc", "pakn_about_staff",
)  # fmt: skip
ADDED = "received_on_time"

FILL = f"""
UPDATE scoring.leaf_flows l SET {ADDED} = x.n
FROM (
    SELECT f.unit_id, f.procedure,
           to_char(f.reception_at AT TIME ZONE 'Asia/Ho_Chi_Minh', 'YYYYMM') AS month,
           count(*) AS n
    FROM scoring.facts f
    WHERE f.kind = 'dossier' AND f.reception_at IS NOT NULL AND NOT f.late_by_rule
      AND (f.eff_due_at IS NULL OR least(f.end_at, f.source_updated_at) <= f.eff_due_at)
    GROUP BY 1, 2, 3
) x
WHERE l.unit_id = x.unit_id AND l.procedure = x.procedure AND l.month = x.month
"""


def _view(columns: Sequence[str]) -> str:
    return (
        "CREATE VIEW scoring.leaf_counters AS\n"
        "SELECT l.unit_id, l.procedure, l.month, v.counter, v.value\n"
        "FROM scoring.leaf_flows l CROSS JOIN LATERAL (VALUES "
        + ", ".join(f"('{c}', l.{c})" for c in columns)
        + ") AS v(counter, value)\nWHERE v.value <> 0"
    )


def upgrade() -> None:
    op.execute("DROP VIEW scoring.leaf_counters")
    op.execute(f"ALTER TABLE scoring.leaf_flows ADD COLUMN {ADDED} bigint NOT NULL DEFAULT 0")
    op.execute(FILL)
    # every row was rewritten: the rebuild's and the period statements' plans read its statistics
    op.execute("ANALYZE scoring.leaf_flows")
    op.execute(_view((*BEFORE, ADDED)))


def downgrade() -> None:
    op.execute("DROP VIEW scoring.leaf_counters")
    op.execute(f"ALTER TABLE scoring.leaf_flows DROP COLUMN {ADDED}")
    op.execute(_view(BEFORE))
