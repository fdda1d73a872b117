"""Leaf flow counters stored wide: one row per (unit, procedure, month) with a column per flow
counter, instead of one row per counter. A province-year is ~50k rows instead of ~725k, so a
rebuild writes (and a refresh reads) an order of magnitude fewer tuples and index entries.
`scoring.leaf_counters` stays as a view with the old narrow shape (non-zero values only) for
readers that want one counter per row.

The column list is frozen here (a migration must not import the domain): it is the `flow`
counters of `services.scoring.domain.facts.COUNTERS` at this revision; a test checks they agree.

Revision ID: scoring_0006
Revises: scoring_0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0006"
down_revision: str | None = "scoring_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLOWS = (
    "received", "received_online", "synced", "fee_dossiers", "paid_online", "digitised",
    "digitised_e_result", "reused", "vneid", "finished", "finished_on_time", "finished_late",
    "needs_result", "e_result", "proc_published", "proc_published_on_time", "proc_public_due",
    "proc_public_on_time", "proc_public", "proc_public_complete", "pakn_handled",
    "pakn_handled_on_time", "pakn_rated", "pakn_satisfied",
)  # fmt: skip

NARROW_VIEW = (
    "CREATE VIEW scoring.leaf_counters AS\n"
    "SELECT l.unit_id, l.procedure, l.month, v.counter, v.value\n"
    "FROM scoring.leaf_flows l CROSS JOIN LATERAL (VALUES "
    + ", ".join(f"('{c}', l.{c})" for c in FLOWS)
    + ") AS v(counter, value)\nWHERE v.value <> 0"
)


def upgrade() -> None:
    columns = ",\n".join(f"    {c} bigint NOT NULL DEFAULT 0" for c in FLOWS)
    op.execute(f"""
    CREATE TABLE scoring.leaf_flows (
        unit_id text NOT NULL,
        procedure text NOT NULL,
        month char(6) NOT NULL,
    {columns},
        PRIMARY KEY (unit_id, month, procedure)
    )""")
    op.execute(f"""
    INSERT INTO scoring.leaf_flows (unit_id, procedure, month, {", ".join(FLOWS)})
    SELECT unit_id, procedure, month, {", ".join(f"coalesce(s{i}, 0)" for i in range(len(FLOWS)))}
    FROM (SELECT unit_id, procedure, month,
                 {", ".join(f"sum(value) FILTER (WHERE counter = '{c}') AS s{i}"
                            for i, c in enumerate(FLOWS))}
          FROM scoring.leaf_counters GROUP BY unit_id, procedure, month) AS t""")
    op.execute("DROP TABLE scoring.leaf_counters")
    op.execute(NARROW_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW scoring.leaf_counters")
    op.execute("""
    CREATE TABLE scoring.leaf_counters (
        unit_id text NOT NULL,
        procedure text NOT NULL,
        month char(6) NOT NULL,
        counter text NOT NULL,
        value bigint NOT NULL,
        PRIMARY KEY (unit_id, month, counter, procedure)
    )""")
    op.execute("CREATE INDEX ix_leaf_counters_month ON scoring.leaf_counters (month, counter)")
    op.execute("""
    INSERT INTO scoring.leaf_counters (unit_id, procedure, month, counter, value)
    SELECT l.unit_id, l.procedure, l.month, v.counter, v.value
    FROM scoring.leaf_flows l CROSS JOIN LATERAL (VALUES """
        + ", ".join(f"('{c}', l.{c})" for c in FLOWS)
        + """) AS v(counter, value)
    WHERE v.value <> 0""")
    op.execute("DROP TABLE scoring.leaf_flows")
