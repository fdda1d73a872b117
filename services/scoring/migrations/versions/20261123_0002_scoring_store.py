"""Scoring store: unit registry with lineage, facts, monthly leaf counters, stale queue,
immutable snapshot versions, rankings, alerts, official scores, remediation items.

Revision ID: scoring_0002
Revises: scoring_0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op

revision: str = "scoring_0002"
down_revision: str | None = "scoring_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
CREATE TABLE scoring.units (
    id text PRIMARY KEY,
    name text NOT NULL,
    level text NOT NULL,
    kind text NOT NULL,
    parent_id text REFERENCES scoring.units (id),
    valid_from date NOT NULL,
    valid_to date,
    aliases jsonb NOT NULL DEFAULT '[]',
    path text NOT NULL,
    CONSTRAINT ck_units_validity CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE INDEX ix_units_path ON scoring.units (path text_pattern_ops);
CREATE INDEX ix_units_parent ON scoring.units (parent_id);

CREATE TABLE scoring.unit_external_codes (
    source text NOT NULL,
    code text NOT NULL,
    unit_id text NOT NULL REFERENCES scoring.units (id),
    PRIMARY KEY (source, code)
);

CREATE TABLE scoring.unit_lineage (
    from_id text NOT NULL REFERENCES scoring.units (id),
    to_id text NOT NULL REFERENCES scoring.units (id),
    kind text NOT NULL CHECK (kind IN ('merged_into', 'split_into', 'renamed_to')),
    effective_on date NOT NULL,
    PRIMARY KEY (from_id, to_id, kind)
);
CREATE INDEX ix_unit_lineage_to ON scoring.unit_lineage (to_id);

-- One row per fact (dossier, procedure, petition) as last seen; newer source_updated_at wins.
-- `doc` is the normalised record; typed columns are what the set-based SQL reads.
CREATE TABLE scoring.facts (
    kind text NOT NULL CHECK (kind IN ('dossier', 'procedure', 'petition')),
    source_id text NOT NULL,
    code text NOT NULL,
    unit_id text NOT NULL,
    procedure text NOT NULL DEFAULT '',
    source_updated_at timestamptz NOT NULL,
    reception_at timestamptz,
    end_at timestamptz,
    eff_due_at timestamptz,
    late_by_rule boolean NOT NULL DEFAULT false,
    paused boolean NOT NULL DEFAULT false,
    listed_from timestamptz,
    is_online boolean NOT NULL DEFAULT false,
    has_fee boolean NOT NULL DEFAULT false,
    doc jsonb NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, source_id, code)
);
CREATE INDEX ix_facts_unit_kind ON scoring.facts (unit_id, kind);

-- Flow counters per (unit, procedure, month): the additive leaf everything is summed from.
CREATE TABLE scoring.leaf_counters (
    unit_id text NOT NULL,
    procedure text NOT NULL,
    month char(6) NOT NULL,
    counter text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (unit_id, month, counter, procedure)
);
CREATE INDEX ix_leaf_counters_month ON scoring.leaf_counters (month, counter);

-- Manually entered or imported counters (personal data store, complaints, ...).
CREATE TABLE scoring.manual_counters (
    unit_id text NOT NULL,
    month char(6) NOT NULL,
    counter text NOT NULL,
    value numeric NOT NULL,
    entered_by text NOT NULL,
    entered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, month, counter)
);

CREATE TABLE scoring.stale (
    unit_id text NOT NULL,
    month char(6) NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, month)
);

-- Immutable snapshot versions: a recomputation that changes anything writes version n+1.
CREATE TABLE scoring.snapshots (
    unit_id text NOT NULL,
    period text NOT NULL,
    profile text NOT NULL,
    version integer NOT NULL,
    computed_at timestamptz NOT NULL DEFAULT now(),
    total double precision,
    max_total double precision NOT NULL,
    applicable_max double precision NOT NULL,
    groups jsonb NOT NULL,
    indicators jsonb NOT NULL,
    counters jsonb NOT NULL,
    digest text NOT NULL,
    PRIMARY KEY (unit_id, period, profile, version)
);
CREATE INDEX ix_snapshots_period ON scoring.snapshots (period, profile);

CREATE TABLE scoring.rankings (
    unit_id text NOT NULL,
    period text NOT NULL,
    profile text NOT NULL,
    peer_group text NOT NULL,
    rank integer,
    previous_rank integer,
    peers integer NOT NULL,
    total double precision,
    computed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, period, profile)
);

CREATE TABLE scoring.alerts (
    alert_id text PRIMARY KEY,
    rule text NOT NULL,
    unit_id text NOT NULL,
    indicator text NOT NULL,
    period text NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'cleared')),
    message text NOT NULL,
    value double precision,
    threshold double precision,
    raised_at timestamptz NOT NULL DEFAULT now(),
    cleared_at timestamptz
);
CREATE INDEX ix_alerts_unit_period ON scoring.alerts (unit_id, period);

CREATE TABLE scoring.official_scores (
    unit_id text NOT NULL,
    period text NOT NULL,
    profile text NOT NULL,
    item text NOT NULL,
    points double precision NOT NULL,
    source text NOT NULL,
    imported_by text NOT NULL,
    imported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (unit_id, period, profile, item)
);

CREATE TABLE scoring.remediation_items (
    item_id text PRIMARY KEY,
    unit_id text NOT NULL,
    origin text NOT NULL,
    status text NOT NULL,
    deadline date,
    completed_on date,
    criteria jsonb NOT NULL DEFAULT '[]',
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_remediation_items_unit ON scoring.remediation_items (unit_id);
"""

TABLES = (
    "remediation_items", "official_scores", "alerts", "rankings", "snapshots", "stale",
    "manual_counters", "leaf_counters", "facts", "unit_lineage", "unit_external_codes", "units",
)


def upgrade() -> None:
    for statement in UPGRADE.split(";\n"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    for t in TABLES:
        op.execute(f"DROP TABLE scoring.{t}")
