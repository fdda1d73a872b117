"""Leaf flows for the portal's 2026 metrics (profile 766@2): hours from reception to the end of
finished dossiers (average processing days), dossiers received with an electronic result, online
dossiers on time as last known, dossiers synced to the DVCQG personal data store or filled from
national population data, and petitions about procedures or about staff. New columns default to
0: the facts already stored do not carry these fields, so 0 is what they contribute until a
rebuild reads newer facts. The narrow `leaf_counters` view is recreated with them.

Alerts get their words beside the message (title, English title and message), the period kind
they belong to (one open alert per unit, indicator and kind), whether the period was still
running when judged and up to which day, and why an alert was cleared. Existing rows get their
kind from the period id. Processed events are indexed by time: rankings and scorecards say
when the last event was applied. Official scores keep the portal's published numerator,
denominator, ratio and max beside the points, which may be null (published without points).

Column lists are frozen here (a migration must not import the domain).

Revision ID: scoring_0012
Revises: scoring_0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0012"
down_revision: str | None = "scoring_0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = (
    "received", "received_online", "synced", "fee_dossiers", "paid_online", "digitised",
    "digitised_e_result", "reused", "vneid", "finished", "finished_on_time", "finished_late",
    "needs_result", "e_result", "proc_published", "proc_published_on_time", "proc_public_due",
    "proc_public_on_time", "proc_public", "proc_public_complete", "pakn_handled",
    "pakn_handled_on_time", "pakn_rated", "pakn_satisfied",
)  # fmt: skip
ADDED = (
    "finished_hours", "received_e_result", "received_online_on_time", "pds_synced",
    "citizen_data_dossiers", "pakn_about_tthc", "pakn_about_staff",
)  # fmt: skip


def _view(columns: Sequence[str]) -> str:
    return (
        "CREATE VIEW scoring.leaf_counters AS\n"
        "SELECT l.unit_id, l.procedure, l.month, v.counter, v.value\n"
        "FROM scoring.leaf_flows l CROSS JOIN LATERAL (VALUES "
        + ", ".join(f"('{c}', l.{c})" for c in columns)
        + ") AS v(counter, value)\nWHERE v.value <> 0"
    )


ALERTS_UP = (
    """ALTER TABLE scoring.alerts
    ADD COLUMN title text NOT NULL DEFAULT '',
    ADD COLUMN title_en text NOT NULL DEFAULT '',
    ADD COLUMN message_en text NOT NULL DEFAULT '',
    ADD COLUMN period_kind text,
    ADD COLUMN in_progress boolean NOT NULL DEFAULT false,
    ADD COLUMN judged_on date,
    ADD COLUMN cleared_reason text""",
    """UPDATE scoring.alerts SET period_kind = CASE
    WHEN period ~ 'YTD' THEN 'ytd' WHEN period ~ 'Q' THEN 'quarter'
    WHEN length(period) = 4 THEN 'year' ELSE 'month' END""",
    "ALTER TABLE scoring.alerts ALTER COLUMN period_kind SET NOT NULL",
    """CREATE INDEX ix_alerts_open_kind ON scoring.alerts (unit_id, indicator, period_kind)
    WHERE status = 'open'""",
    # rankings and scorecards say when the last event was applied: max(processed_at)
    "CREATE INDEX ix_processed_events_at ON scoring.processed_events (processed_at)",
    # official scores keep the published counts beside the points (the portal publishes
    # some metrics without points: null)
    """ALTER TABLE scoring.official_scores ALTER COLUMN points DROP NOT NULL,
    ADD COLUMN external_code text, ADD COLUMN numerator double precision,
    ADD COLUMN denominator double precision, ADD COLUMN ratio double precision,
    ADD COLUMN max_points double precision""",
)
ALERTS_DOWN = (
    "DELETE FROM scoring.official_scores WHERE points IS NULL",
    """ALTER TABLE scoring.official_scores ALTER COLUMN points SET NOT NULL,
    DROP COLUMN external_code, DROP COLUMN numerator, DROP COLUMN denominator,
    DROP COLUMN ratio, DROP COLUMN max_points""",
    "DROP INDEX scoring.ix_processed_events_at",
    "DROP INDEX scoring.ix_alerts_open_kind",
    """ALTER TABLE scoring.alerts DROP COLUMN title, DROP COLUMN title_en,
    DROP COLUMN message_en, DROP COLUMN period_kind, DROP COLUMN in_progress,
    DROP COLUMN judged_on, DROP COLUMN cleared_reason""",
)


def upgrade() -> None:
    for statement in ALERTS_UP:
        op.execute(statement)
    op.execute("DROP VIEW scoring.leaf_counters")
    op.execute(
        "ALTER TABLE scoring.leaf_flows "
        + ", ".join(f"ADD COLUMN {c} bigint NOT NULL DEFAULT 0" for c in ADDED)
    )
    op.execute(_view((*BEFORE, *ADDED)))


def downgrade() -> None:
    for statement in ALERTS_DOWN:
        op.execute(statement)
    op.execute("DROP VIEW scoring.leaf_counters")
    op.execute(
        "ALTER TABLE scoring.leaf_flows " + ", ".join(f"DROP COLUMN {c}" for c in ADDED)
    )
    op.execute(_view(BEFORE))
