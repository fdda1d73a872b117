"""Alembic operations for the event tables every service has (outbox, processed_events).

Used by each service's migrations (the `_v1` tables by the first, later changes by one revision
per service calling the same function), so the three schemas cannot drift apart. If the shape
ever changes, add a new function here (e.g. `..._v2`) for the new migrations and leave this one
as it is: migrations already applied must keep meaning what they meant.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_event_tables_v1(schema: str) -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["id"], schema=schema,
        postgresql_where=sa.text("published_at IS NULL"),
    )  # fmt: skip
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text(), nullable=False),
        sa.Column("event_source", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("consumer", "event_source", "event_id", name="pk_processed_events"),
        schema=schema,
    )


def drop_event_tables_v1(schema: str) -> None:
    op.drop_table("processed_events", schema=schema)
    op.drop_index("ix_outbox_unpublished", table_name="outbox", schema=schema)
    op.drop_table("outbox", schema=schema)


def _retype_outbox_payload(schema: str, type_: str) -> None:
    # `ALTER COLUMN … TYPE` resets the column's compression to the default, so the one it had
    # (ingest's lz4) is set again in the same statement, before the rewrite stores the rows.
    op.execute(f"""
        DO $$
        DECLARE method "char";
        BEGIN
            SELECT attcompression INTO method FROM pg_attribute
            WHERE attrelid = '{schema}.outbox'::regclass AND attname = 'payload';
            EXECUTE 'ALTER TABLE {schema}.outbox ALTER COLUMN payload TYPE {type_} '
                'USING payload::{type_}'
                || CASE method WHEN 'l' THEN ', ALTER COLUMN payload SET COMPRESSION lz4'
                               WHEN 'p' THEN ', ALTER COLUMN payload SET COMPRESSION pglz'
                               ELSE '' END;
        END $$""")


def outbox_payload_text_v2(schema: str) -> None:
    """The outbox payload becomes `text`: the JSON exactly as the relay publishes it.

    Rows already there keep the text jsonb gave them (what the relay published for them before);
    new rows hold pydantic's JSON. Rewrites the table under an exclusive lock."""
    _retype_outbox_payload(schema, "text")


def outbox_payload_jsonb_v2(schema: str) -> None:
    """Back to `jsonb` (fails on a payload jsonb refuses, e.g. a `\\u0000` in a string)."""
    _retype_outbox_payload(schema, "jsonb")


def add_outbox_traceparent_v3(schema: str) -> None:
    """`outbox.traceparent`: the W3C trace context of the span that wrote the event, published
    as the CloudEvents `ce_traceparent` header (NULL while tracing is off)."""
    op.execute(f"ALTER TABLE {schema}.outbox ADD COLUMN IF NOT EXISTS traceparent text")


def drop_outbox_traceparent_v3(schema: str) -> None:
    op.execute(f"ALTER TABLE {schema}.outbox DROP COLUMN IF EXISTS traceparent")
